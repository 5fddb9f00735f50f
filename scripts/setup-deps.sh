#!/usr/bin/env bash
# Installs every build and test dependency of apr from the system's own packages.
# Idempotent: packages already present are left alone, so it is cheap to run again.
# CUDA is not installed here: the cuda plugin is built when nvcc is found
# (PATH or /usr/local/cuda/bin), and skipped otherwise.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libboost-dev libboost-program-options-dev   # Boost.DLL (header-only) + Program_options
  libspdlog-dev libfmt-dev                     # logging
  catch2                                       # tests (Catch2 v2)
  libpcre2-dev                                 # Unicode categories for the BPE pre-tokenizers
  libvulkan-dev vulkan-tools glslang-tools glslang-dev spirv-tools  # vulkan plugin
  mesa-vulkan-drivers                          # lavapipe: a real Vulkan device on the CPU
  clang libclang-rt-14-dev                     # libFuzzer and sanitizer runtimes
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
