#!/usr/bin/env bash
# Installs what hetpipe needs (the Debian packages in scripts/deps.txt, only those missing),
# then configures and builds it in ./build. Re-running is cheap.
#   scripts/setup.sh                  # build (CUDA lanes when nvcc is found)
#   BUILD_DIR=b HETPIPE_CUDA=OFF scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}

missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done < scripts/deps.txt
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# nvcc is often installed outside PATH.
[[ -x /usr/local/cuda/bin/nvcc ]] && export PATH=$PATH:/usr/local/cuda/bin
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHETPIPE_CUDA="${HETPIPE_CUDA:-AUTO}" \
  ${CUDA_ARCH:+-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCH} >/dev/null
cmake --build "$build" -j "$(nproc)"
