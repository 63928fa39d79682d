/* TEST ONLY — never shipped. Wine 8's bcryptprimitives.dll lacks ProcessPrng, which the
 * `tokenizers` extension (Rust's std, through faster-whisper) imports; Windows 10+ has it.
 * This shim exports ProcessPrng over advapi32's RtlGenRandom (SystemFunction036).
 * tests/installer/wine_prefix.sh builds it with mingw into the test wine prefix's system32.
 */
#include <windows.h>

typedef BOOLEAN (WINAPI *gen_fn)(PVOID, ULONG);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    static gen_fn gen;
    if (!gen) {
        HMODULE adv = LoadLibraryW(L"advapi32.dll");
        gen = adv ? (gen_fn)(void (*)(void))GetProcAddress(adv, "SystemFunction036") : NULL;
        if (!gen) return FALSE;
    }
    while (len) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!gen(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

/* Wine's own bcryptprimitives.dll exports SystemPrng; kept for whatever else imports it. */
__declspec(dllexport) BOOL WINAPI SystemPrng(PBYTE data, SIZE_T len) {
    return ProcessPrng(data, len);
}
