/*
 * persist_snap.c: snapshot files (format in persist_snap.h, docs/persistence.md): the temp-file, fsync, rename,
 * directory-fsync write that the Pushgateway skips (its files could come back empty or half written after a power
 * loss, PGW#101), a verify-then-deliver reader, and the clean-up of temp files left by a crash (PGW#398).
 */
#include "persist_snap.h"
#include "crc32c.h"
#include "le.h"
#include "persist_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist_log.h"

#define SNAP_MAGIC "FERRYSNP"
#define SNAP_END_MAGIC "FYSNPEND"
#define SNAP_VERSION 1u
#define SNAP_END_MARK 0xFFFFFFFFu
#define WBUF_SIZE (256 * 1024)

/* Splits path into its directory ("." if none) and base name; -1 if either does not fit. */
static int split_path(const char *path, char *dir, size_t dlen, char *base, size_t blen)
{
    const char *slash = strrchr(path, '/');
    int n1, n2;
    if (slash == NULL) {
        n1 = snprintf(dir, dlen, ".");
        n2 = snprintf(base, blen, "%s", path);
    } else {
        n1 = snprintf(dir, dlen, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        n2 = snprintf(base, blen, "%s", slash + 1);
    }
    return n1 < 0 || (size_t)n1 >= dlen || n2 < 0 || (size_t)n2 >= blen || base[0] == 0 ? -1 : 0;
}

/* Writing ------------------------------------------------------------------------------------------------------ */

struct st_fy_snap_writer_t {
    int fd;
    int err;      /* first write error (errno) */
    uint32_t crc; /* of every byte handed to write(2) so far */
    uint64_t records, bytes;
    size_t len;
    uint8_t buf[WBUF_SIZE];
};

static void w_flush(fy_snap_writer_t *w)
{
    const uint8_t *p = w->buf;
    size_t n = w->len;
    w->crc = fy_crc32c(w->crc, p, n);
    while (n > 0 && w->err == 0) {
        ssize_t r = write(w->fd, p, n);
        if (r < 0) {
            if (errno != EINTR)
                w->err = errno;
            continue;
        }
        p += r;
        n -= (size_t)r;
    }
    w->bytes += w->len;
    w->len = 0;
}

static void w_bytes(fy_snap_writer_t *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        if (w->len == WBUF_SIZE)
            w_flush(w);
        size_t k = WBUF_SIZE - w->len < n ? WBUF_SIZE - w->len : n;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
    }
}

int fy_snap_put(fy_snap_writer_t *w, const void *payload, size_t len)
{
    if (len > FY_SNAP_MAX_RECORD || (len > 0 && payload == NULL)) {
        errno = EINVAL;
        return -1;
    }
    if (w->err != 0) {
        errno = w->err;
        return -1;
    }
    uint8_t h[8];
    fy_put_le32(h, (uint32_t)len);
    fy_put_le32(h + 4, fy_crc32c(fy_crc32c(0, h, 4), payload, len));
    w_bytes(w, h, sizeof(h));
    w_bytes(w, payload, len);
    w->records++;
    if (w->err != 0) {
        errno = w->err;
        return -1;
    }
    return 0;
}

int fy_snap_write(const char *path, uint64_t wal_seq, fy_snap_fill_cb fill, void *ctx, fy_snap_info_t *info, char *err,
                  size_t errlen)
{
    char dir[4096], base[1024], tmp[4096 + 32];
    if (split_path(path, dir, sizeof(dir), base, sizeof(base)) != 0) {
        fy__persist_err(err, errlen, "snapshot path %s: bad or too long", path);
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    fy_snap_writer_t *w = malloc(sizeof(*w));
    if (w == NULL) {
        fy__persist_err(err, errlen, "write %s: out of memory", tmp);
        return -1;
    }
    memset(w, 0, offsetof(fy_snap_writer_t, buf));
    int rc = -1, created = 0;
    unlink(tmp); /* a leftover of an earlier process that had our pid */
    w->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        fy__persist_err(err, errlen, "open %s: %s", tmp, strerror(errno));
        goto out;
    }
    created = 1;

    uint8_t h[FY_SNAP_HEADER];
    memcpy(h, SNAP_MAGIC, 8);
    fy_put_le32(h + 8, SNAP_VERSION);
    fy_put_le32(h + 12, 0);
    fy_put_le64(h + 16, wal_seq);
    fy_put_le32(h + 24, fy_crc32c(0, h, 24));
    w_bytes(w, h, sizeof(h));
    int frc = fill(ctx, w);
    if (frc != 0) {
        if (w->err != 0)
            fy__persist_err(err, errlen, "write %s: %s", tmp, strerror(w->err));
        else
            fy__persist_err(err, errlen, "write %s: abandoned by its producer (%d)", tmp, frc);
        goto out;
    }
    uint8_t t[FY_SNAP_TRAILER];
    fy_put_le32(t, SNAP_END_MARK);
    fy_put_le64(t + 4, w->records);
    memcpy(t + 12, SNAP_END_MAGIC, 8);
    w_bytes(w, t, 20);
    w_flush(w); /* the file CRC covers everything up to here */
    fy_put_le32(t + 20, w->crc);
    w_bytes(w, t + 20, 4);
    w_flush(w);
    if (w->err != 0) {
        fy__persist_err(err, errlen, "write %s: %s", tmp, strerror(w->err));
        goto out;
    }
    if (fy__persist_sync(w->fd, 0) != 0) {
        fy__persist_err(err, errlen, "fsync %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(w->fd) != 0) {
        w->fd = -1;
        fy__persist_err(err, errlen, "close %s: %s", tmp, strerror(errno));
        goto out;
    }
    w->fd = -1;
    if (rename(tmp, path) != 0) {
        fy__persist_err(err, errlen, "rename %s to %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    created = 0;
    if (fy__persist_sync_dir(dir) != 0) {
        /* the new file is in place but the rename may not survive a power loss; the caller must not truncate the log */
        fy__persist_err(err, errlen, "fsync directory %s: %s", dir, strerror(errno));
        goto out;
    }
    if (info != NULL) {
        info->wal_seq = wal_seq;
        info->records = w->records;
        info->bytes = w->bytes;
    }
    rc = 0;
out:
    if (w->fd >= 0)
        close(w->fd);
    if (created)
        unlink(tmp);
    free(w);
    return rc;
}

/* Reading ------------------------------------------------------------------------------------------------------ */

/* Checks everything; returns the offset of the first problem and sets *problem, or SIZE_MAX if the file is sound. */
static size_t snap_verify(const uint8_t *p, size_t size, uint64_t *records, char *problem, size_t plen)
{
    *records = 0;
    if (size < FY_SNAP_HEADER) {
        snprintf(problem, plen, "truncated header (%zu of %d bytes)", size, FY_SNAP_HEADER);
        return 0;
    }
    if (memcmp(p, SNAP_MAGIC, 8) != 0) {
        snprintf(problem, plen, "not a ferry snapshot (bad magic)");
        return 0;
    }
    if (fy_get_le32(p + 24) != fy_crc32c(0, p, 24)) {
        snprintf(problem, plen, "header checksum mismatch");
        return 0;
    }
    if (fy_get_le32(p + 8) != SNAP_VERSION) {
        snprintf(problem, plen, "unsupported snapshot version %u", fy_get_le32(p + 8));
        return 0;
    }
    size_t off = FY_SNAP_HEADER;
    uint64_t n = 0;
    for (;;) {
        if (size - off < 4) {
            snprintf(problem, plen, "truncated: the file ends after %llu records, without a trailer", (unsigned long long)n);
            return off;
        }
        uint32_t len = fy_get_le32(p + off);
        if (len == SNAP_END_MARK)
            break;
        if (len > FY_SNAP_MAX_RECORD) {
            snprintf(problem, plen, "impossible record length %u", len);
            return off;
        }
        if (size - off < 8 || size - off - 8 < len) {
            snprintf(problem, plen, "truncated: record of %u bytes runs past the end of the file (%zu bytes)", len, size);
            return off;
        }
        if (fy_get_le32(p + off + 4) != fy_crc32c(fy_crc32c(0, p + off, 4), p + off + 8, len)) {
            snprintf(problem, plen, "record checksum mismatch");
            return off;
        }
        off += 8 + (size_t)len;
        n++;
    }
    if (size - off < FY_SNAP_TRAILER) {
        snprintf(problem, plen, "truncated trailer (%zu of %d bytes)", size - off, FY_SNAP_TRAILER);
        return off;
    }
    if (memcmp(p + off + 12, SNAP_END_MAGIC, 8) != 0) {
        snprintf(problem, plen, "bad trailer magic");
        return off;
    }
    if (fy_get_le64(p + off + 4) != n) {
        snprintf(problem, plen, "trailer counts %llu records, the file has %llu", (unsigned long long)fy_get_le64(p + off + 4),
                 (unsigned long long)n);
        return off;
    }
    if (fy_get_le32(p + off + 20) != fy_crc32c(0, p, off + 20)) {
        snprintf(problem, plen, "file checksum mismatch");
        return off;
    }
    if (size - off > FY_SNAP_TRAILER) {
        snprintf(problem, plen, "%zu unexpected bytes after the trailer", size - off - FY_SNAP_TRAILER);
        return off + FY_SNAP_TRAILER;
    }
    *records = n;
    return SIZE_MAX;
}

int fy_snap_read(const char *path, fy_snap_read_cb cb, void *ctx, fy_snap_info_t *info, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        fy__persist_err(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        fy__persist_err(err, errlen, "stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        fy__persist_err(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    const uint8_t *p = NULL;
    if (size > 0) {
        p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            fy__persist_err(err, errlen, "mmap %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    close(fd);
    static const uint8_t empty[1];
    uint64_t n;
    char problem[160];
    int rc = 0;
    size_t bad = snap_verify(p != NULL ? p : empty, size, &n, problem, sizeof(problem));
    if (bad != SIZE_MAX) {
        fy__persist_err(err, errlen, "%s: offset %zu: %s", path, bad, problem);
        rc = -1;
        goto out;
    }
    /* sound: deliver */
    for (size_t off = FY_SNAP_HEADER; fy_get_le32(p + off) != SNAP_END_MARK;) {
        uint32_t len = fy_get_le32(p + off);
        if ((rc = cb(ctx, p + off + 8, len)) != 0)
            goto out;
        off += 8 + (size_t)len;
    }
    if (info != NULL) {
        info->wal_seq = fy_get_le64(p + 16);
        info->records = n;
        info->bytes = size;
    }
out:
    if (p != NULL)
        munmap((void *)p, size);
    return rc;
}

/* Clean-up ----------------------------------------------------------------------------------------------------- */

int fy_snap_cleanup(const char *path, void (*removed)(void *ctx, const char *file), void *ctx)
{
    char dir[4096], base[1024];
    if (split_path(path, dir, sizeof(dir), base, sizeof(base)) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    size_t bl = strlen(base);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strncmp(name, base, bl) != 0)
            continue;
        const char *rest = name + bl;
        size_t pl = strncmp(rest, ".tmp.", 5) == 0 ? 5 : strncmp(rest, ".in_progress.", 13) == 0 ? 13 : 0;
        if (pl == 0 || rest[pl] == 0)
            continue;
        if (unlinkat(dirfd(d), name, 0) != 0)
            continue;
        n++;
        if (removed != NULL) {
            char full[4096 + 1024 + 2];
            snprintf(full, sizeof(full), "%s/%s", dir, name);
            removed(ctx, full);
        }
    }
    closedir(d);
    return n;
}
