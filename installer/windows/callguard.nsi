; The callguard installer for Windows x64 (built by build.sh: makensis -DVERSION -DAPPDIR -DOUTFILE).
;
;   callguard-setup-VERSION.exe          install (asks for the folder; needs an administrator)
;   callguard-setup-VERSION.exe /S       silent install into Program Files (IT deployment)
;   Uninstall.exe                        remove the program; the counselor's calls stay unless
;                                        "delete my call records" is ticked
;   Uninstall.exe /S [/PURGE]            silent; /PURGE also deletes the current user's calls,
;                                        settings and cache
;
; Per-user data is not written here: the call store and settings live in the user's
; %LOCALAPPDATA%\callguard and %APPDATA%\callguard (callguard's own default paths).
Unicode true
Target amd64-unicode
ManifestDPIAware true
SetCompressor /SOLID lzma
SetCompressorDictSize 32

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "x64.nsh"
!include "Sections.nsh"

!define APPNAME "callguard"
!define UNINSTKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\callguard"

Name "${APPNAME} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\callguard"
InstallDirRegKey HKLM "Software\callguard" "InstallDir"
RequestExecutionLevel admin
BrandingText "callguard ${VERSION}"
VIProductVersion "${VERSION}.0"
VIAddVersionKey /LANG=0 "ProductName" "callguard"
VIAddVersionKey /LANG=0 "FileDescription" "callguard setup"
VIAddVersionKey /LANG=0 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "LegalCopyright" "callguard contributors, Apache-2.0"

!define MUI_ABORTWARNING
!insertmacro MUI_PAGE_LICENSE "${APPDIR}\LICENSE"
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!define MUI_FINISHPAGE_RUN "$INSTDIR\callguard-gui.exe"
!define MUI_FINISHPAGE_RUN_TEXT "상담 화면 시작"
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "Korean"
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "callguard needs 64-bit Windows 10 or 11."
    Abort
  ${EndIf}
  SetRegView 64
FunctionEnd

Section "callguard" SecMain
  SectionIn RO
  SetShellVarContext all
  ; An upgrade replaces the program folder whole (no stale modules from the old version).
  RMDir /r "$INSTDIR"
  SetOutPath "$INSTDIR"
  File /r "${APPDIR}\*"
  WriteUninstaller "$INSTDIR\Uninstall.exe"
  CreateDirectory "$SMPROGRAMS\callguard"
  SetOutPath "$INSTDIR"
  CreateShortcut "$SMPROGRAMS\callguard\상담 화면.lnk" "$INSTDIR\callguard-gui.exe" "" \
    "$INSTDIR\callguard-gui.exe" 0 SW_SHOWNORMAL "" "callguard: 상담 화면 (counselor)"
  ; 통화 검토: the review window alone (callguard gui --review), no phone line needed.
  CreateShortcut "$SMPROGRAMS\callguard\통화 검토.lnk" "$INSTDIR\callguard-gui.exe" \
    "--review" "$INSTDIR\callguard-gui.exe" 0 SW_SHOWNORMAL "" "callguard: 통화 검토 (review)"
  CreateShortcut "$SMPROGRAMS\callguard\규칙 편집.lnk" "$INSTDIR\callguard-gui.exe" \
    "--open rules" "$INSTDIR\callguard-gui.exe" 0 SW_SHOWNORMAL "" "callguard: 규칙 편집 (rules)"
  CreateShortcut "$SMPROGRAMS\callguard\callguard 제거.lnk" "$INSTDIR\Uninstall.exe"
  WriteRegStr HKLM "Software\callguard" "InstallDir" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTKEY}" "DisplayName" "callguard"
  WriteRegStr HKLM "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTKEY}" "Publisher" "callguard contributors"
  WriteRegStr HKLM "${UNINSTKEY}" "DisplayIcon" "$INSTDIR\callguard-gui.exe"
  WriteRegStr HKLM "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTKEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegStr HKLM "${UNINSTKEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTKEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTKEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKLM "${UNINSTKEY}" "EstimatedSize" $0
SectionEnd

Section "un.callguard" UnSecMain
  SectionIn RO
  SetShellVarContext all
  RMDir /r "$SMPROGRAMS\callguard"
  DeleteRegKey HKLM "${UNINSTKEY}"
  DeleteRegKey HKLM "Software\callguard"
  SetOutPath "$TEMP"
  RMDir /r "$INSTDIR"
SectionEnd

; Not ticked unless asked: the counselor's calls are evidence.
Section /o "un.통화 기록과 설정도 삭제 (delete my call records and settings)" UnSecPurge
  SetShellVarContext current
  RMDir /r "$LOCALAPPDATA\callguard"
  RMDir /r "$APPDATA\callguard"
SectionEnd

Function un.onInit
  SetRegView 64
  ; /PURGE on the command line (silent uninstall) ticks "delete my call records".
  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/PURGE" $1
  ${IfNot} ${Errors}
    SectionSetFlags ${UnSecPurge} ${SF_SELECTED}
  ${EndIf}
FunctionEnd
