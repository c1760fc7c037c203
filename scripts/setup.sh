#!/usr/bin/env bash
# setup.sh - the README's first command: install what is missing, build,
# and run the main job on sample data (a real head CT from Debian's
# invesalius-examples). Output goes to out/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo "== web front end (npm ci from web/package-lock.json, vite build -> web/dist)"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) >/dev/null
ct=$(bash scripts/sample-data.sh)
mkdir -p out
echo "== recon3d info $ct"
./build/recon3d info "$ct"
echo "== recon3d convert $ct -o out/cranium.nii.gz"
./build/recon3d convert "$ct" -o out/cranium.nii.gz
echo "== recon3d mesh $ct -o out/skull.stl --threshold 300 --keep-largest"
./build/recon3d mesh "$ct" -o out/skull.stl --threshold 300 --keep-largest --decimate 0.5
echo "== recon3d mesh $ct -o out/masks.3mf  (the project's own masks, coloured)"
./build/recon3d mesh "$ct" -o out/masks.3mf
echo "== recon3d segment out/cranium.nii.gz -o out/segment  (automatic: body, skin, skull; labels, meshes, report)"
./build/recon3d segment out/cranium.nii.gz -o out/segment
echo "== done: out/cranium.nii.gz (+ .json), out/skull.stl, out/masks.3mf, out/segment/"
echo "   the workstation: ./build/recon3d serve --store out/store, then open http://127.0.0.1:8080/"
