"""The Streamlit analysis app, shipped inside the package and started with ``ssabnet app``.

``ssabnet_app.py`` (the home page) and ``pages/*.py`` are Streamlit scripts, run by
``python -m streamlit run``; :mod:`ssabnet.app.common` holds what they share. They use only the
public API: :mod:`ssabnet` and :mod:`ssabnet.analysis`. Nothing in the core imports this
package (import-linter enforces it), so ``import ssabnet`` never needs Streamlit.
"""
