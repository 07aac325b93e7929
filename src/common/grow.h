/*
 * grow.h: growing a malloc'd array by doubling.
 */
#ifndef FY_GROW_H
#define FY_GROW_H

#include <stddef.h>

/** Makes room for need elements of elem bytes in *p (capacity *cap, doubled from 64). 0, or -1 when out of memory
 * (*p is then unchanged). */
int fy_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif
