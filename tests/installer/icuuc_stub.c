/* TEST ONLY — never shipped. A stand-in for Windows' system icuuc.dll, which wine 8 lacks.
 *
 * Qt 6.11's Qt6Core.dll imports ICU's converter functions (ucnv_*) from the icuuc.dll that
 * Windows 10 1903+ has in System32. Without it Qt6Core.dll does not load under wine. This
 * stub exports the same names; ucnv_open always fails (U_FILE_ACCESS_ERROR), so Qt falls
 * back to its built-in codecs (UTF-8/UTF-16/Latin-1: all callguard uses) and never calls
 * the rest. tests/installer/wine_prefix.sh builds it with mingw and copies it into the test
 * wine prefix's system32 (not into the install folder).
 */
#include <stddef.h>
#include <stdint.h>

#define EXPORT __declspec(dllexport)
typedef int UErrorCode;
enum { U_FILE_ACCESS_ERROR = 4 };

EXPORT void *ucnv_open(const char *name, UErrorCode *err) {
    (void)name;
    if (err && *err <= 0) *err = U_FILE_ACCESS_ERROR;
    return NULL;
}
EXPORT int32_t ucnv_countAvailable(void) { return 0; }
EXPORT const char *ucnv_getAvailableName(int32_t n) { (void)n; return NULL; }
EXPORT const char *ucnv_getStandardName(const char *name, const char *standard,
                                        UErrorCode *err) {
    (void)name; (void)standard;
    if (err && *err <= 0) *err = U_FILE_ACCESS_ERROR;
    return NULL;
}
/* Never reached without a converter; defined so the imports resolve. */
#define UNUSED(fn) EXPORT void *fn(void) { return NULL; }
UNUSED(ucnv_close)
UNUSED(ucnv_reset)
UNUSED(ucnv_getMaxCharSize)
UNUSED(ucnv_getName)
UNUSED(ucnv_getToUCallBack)
UNUSED(ucnv_getFromUCallBack)
UNUSED(ucnv_setToUCallBack)
UNUSED(ucnv_setFromUCallBack)
UNUSED(ucnv_cbToUWriteUChars)
UNUSED(ucnv_cbFromUWriteUChars)
UNUSED(ucnv_toUnicode)
UNUSED(ucnv_fromUnicode)
UNUSED(ucnv_toUCountPending)
UNUSED(ucnv_fromUCountPending)
UNUSED(UCNV_FROM_U_CALLBACK_SUBSTITUTE)
UNUSED(UCNV_TO_U_CALLBACK_SUBSTITUTE)
