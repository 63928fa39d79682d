/* callguard.exe / callguard-gui.exe: start the bundled CPython in this process.
 *
 * The installed folder holds the official embeddable CPython (python311.dll, python311.zip,
 * python311._pth: an isolated interpreter whose path is only this folder and
 * Lib\site-packages) beside the callguard package. This launcher loads python311.dll from
 * its own folder and hands Py_Main the command line
 *
 *     <exe> -X utf8 -c "<run callguard.cli.main>" [GUI_ARGS] <the user's arguments>
 *
 * so `callguard.exe rules check x.toml` is `callguard rules check x.toml`, and
 * callguard-gui.exe (built with -mwindows and -DGUI_ARGS=L"gui": no console window) is
 * `callguard gui ...`; `<exe> -m MODULE ARGS` is `python -X utf8 -m MODULE ARGS`. UTF-8 mode: Korean text never depends on the console's code page.
 * Built by installer/windows/build.sh with x86_64-w64-mingw32-gcc.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

#ifndef PY_DLL
#define PY_DLL L"python311.dll"
#endif

typedef int (*py_main_fn)(int, wchar_t **);

static const wchar_t CODE[] =
    L"import sys; sys.argv[0] = 'callguard'; "
    L"from callguard.cli.main import main; sys.exit(main())";

static void fail(const wchar_t *what, DWORD err) {
    wchar_t msg[1024];
    _snwprintf(msg, 1024, L"callguard: %ls (Windows error %lu). Reinstall callguard.", what,
               (unsigned long)err);
    msg[1023] = 0;
#ifdef GUI_ARGS
    MessageBoxW(NULL, msg, L"callguard", MB_OK | MB_ICONERROR);
#else
    fwprintf(stderr, L"%ls\n", msg);
#endif
}

int wmain(int argc, wchar_t **argv) {
    wchar_t dir[MAX_PATH * 2];
    DWORD n = GetModuleFileNameW(NULL, dir, MAX_PATH * 2);
    if (n == 0 || n >= MAX_PATH * 2) {
        fail(L"cannot find its own folder", GetLastError());
        return 1;
    }
    wchar_t *slash = wcsrchr(dir, L'\\');
    if (slash) *slash = 0;
    wchar_t dll[MAX_PATH * 2 + 32];
    _snwprintf(dll, MAX_PATH * 2 + 32, L"%ls\\%ls", dir, PY_DLL);
    HMODULE py = LoadLibraryExW(dll, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    if (!py) {
        fail(L"cannot load " PY_DLL, GetLastError());
        return 1;
    }
    py_main_fn py_main = (py_main_fn)(void (*)(void))GetProcAddress(py, "Py_Main");
    if (!py_main) {
        fail(L"Py_Main missing from " PY_DLL, GetLastError());
        return 1;
    }
    const wchar_t *head[] = {argv[0], L"-X", L"utf8", L"-c", CODE,
#ifdef GUI_ARGS
                             GUI_ARGS,
#endif
    };
    int nhead = (int)(sizeof head / sizeof head[0]);
    /* `<exe> -m MODULE ...` runs a module as python.exe would: callguard starts its
     * recogniser and Kiwi processes as [sys.executable, "-m", ...], and sys.executable is
     * this launcher. (callguard itself has no -m option.) */
    if (argc > 1 && wcscmp(argv[1], L"-m") == 0) nhead = 3;
    wchar_t **args = calloc((size_t)(nhead + argc), sizeof *args);
    if (!args) return 1;
    for (int i = 0; i < nhead; i++) args[i] = (wchar_t *)head[i];
    for (int i = 1; i < argc; i++) args[nhead + i - 1] = argv[i];
    return py_main(nhead + argc - 1, args);
}
