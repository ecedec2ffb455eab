/*
 * twuv/version.h - compile-time and run-time version numbers.
 *
 * Compare TW_VERSION_HEX (what you compiled against) with tw_version() (what
 * you linked against) to detect a header/library mismatch.
 */
#ifndef TWUV_VERSION_H
#define TWUV_VERSION_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kept in step with project(version:) in meson.build; the build checks it. */
#define TW_VERSION_MAJOR 0
#define TW_VERSION_MINOR 1
#define TW_VERSION_PATCH 0

#define TW_VERSION_HEX \
  ((TW_VERSION_MAJOR << 16) | (TW_VERSION_MINOR << 8) | TW_VERSION_PATCH)

/*
 * tw_version: the library's version as (major << 16) | (minor << 8) | patch.
 * Thread-safe. Never fails.
 */
TW_EXTERN unsigned int tw_version(void);

/*
 * tw_version_string: the library's version as "MAJOR.MINOR.PATCH", a static
 * string. Thread-safe. Never fails.
 */
TW_EXTERN const char *tw_version_string(void);

#ifdef __cplusplus
}
#endif
#endif /* TWUV_VERSION_H */
