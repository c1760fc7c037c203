#!/usr/bin/env bash
# deps.sh - install what recon3d needs on Debian 12, by package name.
# Idempotent: installs only what is missing. Run as root (or with sudo).
set -euo pipefail

# build + runtime libraries (the product links these)
BUILD=(gcc make cmake pkg-config git
       zlib1g-dev libdeflate-dev libjpeg62-turbo-dev libcharls-dev libopenjp2-7-dev
       libcjson-dev libzip-dev libsqlite3-dev libsodium-dev libmicrohttpd-dev libgnutls28-dev
       nodejs)  # nodejs + npm build the web front end (web/, from its lock file)
# tests, fuzzing and golden comparisons (never in the product's runtime path)
TEST=(clang libclang-rt-14-dev dcm2niix python3 python3-numpy python3-pydicom python3-nibabel python3-gdcm
      invesalius-examples assimp-utils admesh python3-vtk9 python3-scipy
      dicom3tools dcmtk python3-skimage
      chromium firefox-esr webkit2gtk-driver xvfb fonts-noto-cjk)

want=("${BUILD[@]}")
[ "${1:-}" = "--with-tests" ] && want+=("${TEST[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm: part of nodejs on NodeSource builds, a package of its own in Debian
if ! command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
