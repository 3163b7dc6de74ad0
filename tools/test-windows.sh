#!/usr/bin/env bash
# Runs the Windows test suite (tests/windows/) under Bun for Windows, in Wine, on this Linux machine.
#
# Sets everything up from scratch and idempotently, caching in .wine/ (gitignored):
#   1. Wine (Debian's wine64) and the mingw-w64 C compiler, installed with apt-get when missing;
#   2. bun.exe from npm (@oven/bun-windows-x64-baseline, the same version as the pinned bun);
#   3. bcryptprimitives.dll: Wine 8 lacks it and recent Bun imports ProcessPrng from it, so a
#      shim of a few lines, built with mingw, is put beside bun.exe;
#   4. a fresh WINEPREFIX for every run (removed afterwards), WINEDEBUG=-all.
# Then runs tests/windows/run.ts under bun.exe and prints, as its last line, "N passed, N failed".
# When Wine cannot be had (not root, no apt-get, no network) it says why and prints
# "0 passed, 0 failed, 1 skipped", exiting 0.
#
# Usage: bash tools/test-windows.sh [test name filter]
#        bash tools/test-windows.sh --bench    (runs bench/windows/handoff.ts instead of the suite)
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$ROOT/.wine"
mkdir -p "$CACHE"

skip() {
  echo "Windows phase skipped: $1"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
}
fail() {
  echo "Windows phase failed: $1"
  echo "0 passed, 1 failed"
  exit 1
}

# --- 1. Wine and mingw ---------------------------------------------------------------------------
find_wine() {
  for w in wine64 /usr/lib/wine/wine64 wine; do
    if command -v "$w" >/dev/null 2>&1; then
      command -v "$w"
      return 0
    fi
  done
  return 1
}
need=()
find_wine >/dev/null || need+=(wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need+=(gcc-mingw-w64-x86-64)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || skip "${need[*]} missing and there is no apt-get to install them"
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    # CI runners are not root but have password-less sudo.
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO=(sudo -n)
    else
      skip "${need[*]} missing and installing them needs root (or password-less sudo)"
    fi
  fi
  echo "Installing ${need[*]} (apt-get)…"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq >"$CACHE/apt.log" 2>&1 ||
    skip "apt-get update failed (no network?); see .wine/apt.log"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$CACHE/apt.log" 2>&1 ||
    skip "apt-get install ${need[*]} failed; see .wine/apt.log"
fi
WINE="$(find_wine)" || skip "Wine was installed but no wine64 binary is on PATH"
WINESERVER="$(dirname "$WINE")/wineserver"
[ -x "$WINESERVER" ] || WINESERVER=wineserver

# --- 2. bun.exe ------------------------------------------------------------------------------------
BUN_VERSION="$(node -p 'require(process.argv[1]).version' "$ROOT/node_modules/bun/package.json" 2>/dev/null ||
  node -p 'require(process.argv[1]).devDependencies.bun' "$ROOT/package.json")"
BUN_DIR="$CACHE/bun-$BUN_VERSION"
if [ ! -f "$BUN_DIR/bun.exe" ]; then
  echo "Fetching bun.exe $BUN_VERSION (npm pack @oven/bun-windows-x64-baseline)…"
  tmp="$(mktemp -d "$CACHE/pack.XXXXXX")"
  (cd "$tmp" && npm pack --silent "@oven/bun-windows-x64-baseline@$BUN_VERSION" >/dev/null 2>"$tmp/npm.log") ||
    { rm -rf "$tmp"; skip "npm pack @oven/bun-windows-x64-baseline@$BUN_VERSION failed (no network?)"; }
  tar -xzf "$tmp"/*.tgz -C "$tmp" || { rm -rf "$tmp"; fail "cannot unpack the bun.exe tarball"; }
  mkdir -p "$BUN_DIR"
  mv "$tmp/package/bin/bun.exe" "$BUN_DIR/bun.exe" || { rm -rf "$tmp"; fail "the tarball holds no bin/bun.exe"; }
  rm -rf "$tmp"
fi

# --- 3. bcryptprimitives.dll shim ----------------------------------------------------------------------
if [ ! -f "$BUN_DIR/bcryptprimitives.dll" ]; then
  echo "Building the bcryptprimitives.dll shim (mingw-w64)…"
  cat >"$CACHE/bcryptprimitives.c" <<'EOF'
/* Wine 8 has no bcryptprimitives.dll; Bun imports ProcessPrng from it. Fill with RtlGenRandom. */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    len -= chunk;
  }
  return TRUE;
}
EOF
  x86_64-w64-mingw32-gcc -shared -O2 -o "$BUN_DIR/bcryptprimitives.dll" "$CACHE/bcryptprimitives.c" -ladvapi32 ||
    fail "cannot build the bcryptprimitives.dll shim"
fi

# --- 4. a fresh prefix, then the suite ------------------------------------------------------------
export WINEPREFIX
WINEPREFIX="$(mktemp -d "$CACHE/prefix.XXXXXX")"
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" NO_COLOR=1
cleanup() {
  "$WINESERVER" -k >/dev/null 2>&1 || true
  rm -rf "$WINEPREFIX"
}
trap cleanup EXIT

# Create the prefix quietly (its first start prints configuration notes).
"$WINE" wineboot --init >/dev/null 2>&1 || true
if [ "${1:-}" = "--bench" ]; then
  cd "$ROOT/bench/windows"
  echo "Running bench/windows/handoff.ts under bun.exe $BUN_VERSION in $("$WINE" --version 2>/dev/null)…"
  timeout 600 "$WINE" "$BUN_DIR/bun.exe" handoff.ts 2>&1 | grep -v "directory mismatch"
  exit "${PIPESTATUS[0]}"
fi
echo "Running tests/windows under bun.exe $BUN_VERSION in $("$WINE" --version 2>/dev/null)…"
# Bun under Wine prints "Internal error: directory mismatch" when its folder (or a parent) has a
# package.json; run from the suite's own folder and drop that line.
cd "$ROOT/tests/windows"
out="$CACHE/last-run.log"
timeout 600 "$WINE" "$BUN_DIR/bun.exe" run.ts "$@" 2>&1 | tee "$out" | grep -v --line-buffered -E "directory mismatch|^[0-9]+ passed, [0-9]+ failed"
status=${PIPESTATUS[0]}
summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1 | tr -d '\r')"
[ -n "$summary" ] || fail "the Windows suite printed no summary (exit $status); see .wine/last-run.log"
echo "$summary"
case "$summary" in *" 0 failed"*) [ "$status" = 0 ] && exit 0 ;; esac
exit 1
