"""ganforge studio: a local web page to explore generators, translate and detect pictures, run a "Which one is
real?" test and watch a run's training timeline (``ganforge studio RUN [RUN ...]``).

- ``app``: the FastAPI app factory and its endpoints; ``static/``: the single page (plain HTML/JS/CSS).
- ``catalog``: the runs given at start, loaded once and dispatched by kind (generator, UNIT translator, detector).
- ``votes``: rounds and answers in SQL (SQLite by default); ``report``: fool rates with Wilson intervals.
- ``security``: upload limits and verification, name checks, host/origin checks, request body cap.
"""
