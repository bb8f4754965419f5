#!/usr/bin/env bash
# Install asr with every extra into a virtual environment (default: ./.venv).
#
#   bash install.sh              # CPU machine: torch 2.13.0 CPU wheel, torchaudio's pure-Python parts
#   ASR_GPU=1 bash install.sh    # CUDA machine: matching CUDA builds of torch and torchaudio from PyPI
#
# Environment:
#   ASR_VENV       where the virtual environment goes (default: .venv in this folder)
#   ASR_GPU        1 = install CUDA builds of torch + torchaudio (full torchaudio, with its kernels)
#   ASR_TORCH      torch version to install (CPU default 2.13.0; GPU default 2.11.0, paired with torchaudio)
#   ASR_NO_APT     1 = do not install the Debian text-to-speech packages (synthetic corpus builder)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${ASR_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

tts_packages="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox"
if [[ "${ASR_NO_APT:-0}" != 1 ]] && command -v apt-get >/dev/null; then
    sudo=""; [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null && sudo="sudo -n"
    if { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            $sudo apt-get install -y -qq --no-install-recommends $tts_packages; } >/dev/null 2>&1; then
        echo "install.sh: text-to-speech voices installed ($tts_packages)"
    else
        echo "install.sh: could not apt-get the TTS voices; the synthetic corpus builder needs: $tts_packages" >&2
    fi
fi

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install -q --upgrade pip

if [[ "${ASR_GPU:-0}" == 1 ]]; then
    torch_version="${ASR_TORCH:-2.11.0}"
    "${pip[@]}" install -q "torch==$torch_version" "torchaudio==$torch_version"
else
    # The CPU wheel (local on the project machines; elsewhere add
    # PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu to get a CPU build).
    "${pip[@]}" install -q "torch==${ASR_TORCH:-2.13.0}"
    # Only torchaudio CUDA wheels exist for this torch: take its pure-Python parts
    # (compliance.kaldi, functional, transforms, the flashlight-text decoder) and drop its
    # compiled kernels, which cannot load against a CPU torch.
    "${pip[@]}" install -q --no-deps torchaudio==2.11.0
    ta_dir="$("$venv/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("torchaudio")
print(pathlib.Path(spec.origin).parent)
PY
)"
    rm -f "$ta_dir"/lib/*.so
fi

"${pip[@]}" install -q -e "$here[all]"
"$venv/bin/python" -c "import asr, torch, torchaudio; print('install.sh: asr', asr.__version__, 'torch', torch.__version__, 'torchaudio', torchaudio.__version__)"
