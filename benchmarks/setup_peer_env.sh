#!/usr/bin/env bash
# Separate benchmark environment with the peers (ultralytics, tidecv), NEVER a runtime dependency of
# ssabnet. It layers on top of the project venv (.venv) through a .pth file so torch is shared
# and the same ssabnet code is measured; the peer packages live only in .benchenv.
#   bash benchmarks/setup_peer_env.sh && .benchenv/bin/python benchmarks/model_speed.py
set -euo pipefail
cd "$(dirname "$0")/.."
test -x .venv/bin/python || make setup
test -x .benchenv/bin/python || python3 -m venv .benchenv
site_main=$(.venv/bin/python -c "import site; print(site.getsitepackages()[0])")
site_bench=$(.benchenv/bin/python -c "import site; print(site.getsitepackages()[0])")
echo "import site; site.addsitedir('$site_main')" > "$site_bench/_ssabnet_main_venv.pth"
.benchenv/bin/python -m pip install --quiet ultralytics==8.4.190 --no-deps
.benchenv/bin/python -m pip install --quiet ultralytics-thop psutil py-cpuinfo polars requests
.benchenv/bin/python -m pip install --quiet tidecv==1.0.1 --no-deps  # TIDE authors' package; its
# deps numpy, matplotlib, pycocotools, pandas, opencv come from .venv through the .pth file
.benchenv/bin/python -m pip install --quiet seaborn appdirs  # tidecv imports them at import time
.benchenv/bin/python -c "import ultralytics, ssabnet, torch; print('ultralytics', ultralytics.__version__, 'torch', torch.__version__)"
.benchenv/bin/python -c "import tidecv; print('tidecv', tidecv.__version__ if hasattr(tidecv, '__version__') else 'ok')"
