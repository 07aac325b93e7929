/*
 * crc32c.h: CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected), shared by the snappy request decoder and the
 * persistence files.
 */
#ifndef FY_CRC32C_H
#define FY_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/** Continues a CRC-32C over data: pass 0 to start; fy_crc32c(fy_crc32c(0, a, n), b, m) is the CRC of a then b. */
uint32_t fy_crc32c(uint32_t crc, const void *data, size_t len);

#endif
