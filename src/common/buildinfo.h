/*
 * buildinfo.h: what a build says about itself in --version, /api/v1/status, the status page and
 * pushgateway_build_info: the fields of prometheus/common's version package (docs/compatibility.md says where
 * Ferry's differ). src/CMakeLists.txt defines FY_VERSION, FY_REVISION, FY_BRANCH and FY_BUILD_USER for every file;
 * the defaults here are for a compile outside it. FY_BUILD_DATE is not defaulted here: it changes at every configure,
 * so CMake gives it only to the files that name it, which define their own fallback.
 */
#ifndef FY_BUILDINFO_H
#define FY_BUILDINFO_H

#ifndef FY_VERSION
#define FY_VERSION "0.0.0"
#endif
#ifndef FY_REVISION
#define FY_REVISION "unknown"
#endif
#ifndef FY_BRANCH
#define FY_BRANCH "HEAD" /* what git says of a detached checkout */
#endif
#ifndef FY_BUILD_USER
#define FY_BUILD_USER "unknown"
#endif

/* Go's GOOS and GOARCH names, which dashboards and the release tarball's name use (linux/amd64, not x86_64). */
#define FY_GOOS "linux"
#if defined(__x86_64__)
#define FY_GOARCH "amd64"
#elif defined(__aarch64__)
#define FY_GOARCH "arm64"
#elif defined(__i386__)
#define FY_GOARCH "386"
#elif defined(__arm__)
#define FY_GOARCH "arm"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define FY_GOARCH "ppc64le"
#elif defined(__s390x__)
#define FY_GOARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define FY_GOARCH "riscv64"
#else
#define FY_GOARCH "unknown"
#endif
#define FY_PLATFORM FY_GOOS "/" FY_GOARCH

/* In place of Go's version: the C compiler and its version ("gcc 12.2.0", "Debian Clang 14.0.6"). */
#if defined(__clang__)
#define FY_COMPILER __VERSION__
#elif defined(__GNUC__)
#define FY_COMPILER "gcc " __VERSION__
#else
#define FY_COMPILER "unknown"
#endif

#endif
