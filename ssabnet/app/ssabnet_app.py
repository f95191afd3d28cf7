"""SSABNet analysis app: entry page (overview of the runs); the analysis pages are in pages/.

Start it with ``ssabnet app --runs DIR [--data NAME|PATH]`` (see :mod:`ssabnet.app_launcher`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ssabnet.app import common

cfg = common.page_header(
    "SSABNet analysis",
    "Where does a small-object detector fail, and do the SSA neck and the SABL loss help?",
)
st.markdown(
    f"**Runs folder:** `{cfg.runs_root}`  \n"
    f"**Dataset:** `{cfg.data_spec or 'from each run config'}`"
)
infos = common.run_infos(cfg)
table = pd.DataFrame(
    [
        {
            "run": i.name,
            "kind": i.kind,
            "model": i.model,
            "box loss": i.box_loss,
            "epochs": i.epochs,
            "dataset": i.dataset or "–",
            "validated": ", ".join(i.splits) or "–",
            "matching tables": i.has_matches,
            "weights": i.weights.name if i.weights else "–",
            "problem": i.problem or "",
        }
        for i in infos
    ]
)
st.metric("Runs found", len(infos))
st.dataframe(table, hide_index=True, width="stretch")
for info in infos:
    if info.problem:
        st.warning(f"{info.name}: {info.problem}")

st.subheader("Pages")
st.page_link("pages/1_Runs.py", label="Runs & per-scale AP", icon="📊")
st.page_link("pages/2_Compare.py", label="Compare checkpoints (bootstrap CIs)", icon="⚖️")
st.page_link("pages/3_Feature_maps.py", label="SSA feature maps", icon="🧠")
st.page_link("pages/4_SABL_curves.py", label="SABL gradient curves", icon="📈")
st.page_link("pages/5_Error_analysis.py", label="Error analysis", icon="🔍")
