"""The studio's HTTP API and its single static page (FastAPI; no build step, no file path from any request).

Endpoints (JSON unless said otherwise; pictures travel as PNG data URLs, timeline frames as ``image/png``):

- ``GET /``, ``/app.js``, ``/style.css``: the page, served from memory.
- ``GET /api/models``: the models given at start, their kind, capabilities and notes; the request limits.
- ``POST /api/models/{name}/sample``: ``{seed, n, psi, class, latent: [offsets]}`` -> a grid of seeds seed..seed+n-1.
- ``POST /api/models/{name}/interpolate``: ``{seed_a, seed_b, steps, psi, class}`` -> a strip.
- ``POST /api/models/{name}/mix``: ``{row_seeds, col_seeds, styles, psi, class}`` -> a style-mixing grid.
- ``POST /api/models/{name}/translate``: multipart ``file`` + ``direction`` (UNIT runs).
- ``POST /api/models/{name}/detect``: multipart ``file`` (detector checkpoints) -> calibrated probability.
- ``POST /api/models/{name}/round``: ``{psi}`` -> a "Which one is real?" pair and its token.
- ``POST /api/rounds/{token}/answer``: ``{choice: left|right, response_ms, rater}`` -> whether it was right.
- ``GET /api/results``: fool rate with a 95 % Wilson interval per model and psi (``studio.report``).
- ``GET /api/models/{name}/timeline`` and ``GET /api/models/{name}/timeline/{index}``: the run's fixed-noise grids.
- ``GET /api/health``.

Errors are ``{"detail": "..."}`` with 400 (bad value for this model), 404 (unknown model, round or frame), 409
(round already answered), 413 (too large), 415 (not a picture), 422 (malformed request or beyond a limit) or 503.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ganforge.studio.catalog import (
    DetectorModel,
    GeneratorModel,
    ModelSet,
    StudioModel,
    TranslatorModel,
    data_url,
)
from ganforge.studio.report import fool_rates
from ganforge.studio.security import (
    NAME_PATTERN,
    TOKEN_PATTERN,
    GuardMiddleware,
    Limits,
    UploadError,
    allowed_hosts_for,
    read_upload,
)
from ganforge.studio.votes import SIDES, RoundError, VoteStore

STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
MAX_LIST = 256  # hard cap on any list in a JSON body, before the per-request limits are checked


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SampleIn(_In):
    seed: int = 0
    n: int = 1
    psi: float = 1.0
    klass: int | None = Field(None, alias="class")
    latent: list[float] = Field(default_factory=list, max_length=MAX_LIST)


class InterpolateIn(_In):
    seed_a: int = 0
    seed_b: int = 1
    steps: int = 8
    psi: float = 1.0
    klass: int | None = Field(None, alias="class")


class MixIn(_In):
    row_seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], max_length=MAX_LIST)
    col_seeds: list[int] = Field(default_factory=lambda: [3, 4, 5], max_length=MAX_LIST)
    styles: str = Field("coarse", max_length=64)
    psi: float = 1.0
    klass: int | None = Field(None, alias="class")


class RoundIn(_In):
    psi: float = 1.0


class AnswerIn(_In):
    choice: str
    response_ms: float | None = None
    rater: str | None = Field(None, max_length=64)


def _fail(status: int, detail: str) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


def _static(name: str) -> bytes:
    return (files("ganforge.studio") / "static" / name).read_bytes()


@dataclass
class _Studio:
    """What every endpoint needs: the models, the vote store, the limits, and the checks they share."""

    models: ModelSet
    store: VoteStore
    limits: Limits
    rng: random.SystemRandom = field(default_factory=random.SystemRandom)

    def model_for(self, name: str, capability: str | None = None) -> StudioModel:
        try:
            m = self.models.get(name)
        except KeyError as e:
            raise _fail(404, str(e.args[0])) from None
        if capability is not None and not m.capabilities().get(capability, False):
            why = "; ".join(m.notes) or f"a {m.kind} model"
            raise _fail(400, f"{name} does not support {capability} ({why})")
        return m

    def check_seed(self, *seeds: int) -> None:
        for s in seeds:
            if not 0 <= s <= self.limits.max_seed:
                raise _fail(422, f"seed must be in [0, {self.limits.max_seed}], got {s}")

    @staticmethod
    def check_count(what: str, value: int, low: int, high: int) -> None:
        if not low <= value <= high:
            raise _fail(422, f"{what} must be in [{low}, {high}], got {value}")

    def compute(self, fn, *args: Any) -> Any:  # noqa: ANN001
        with self.models.lock:
            try:
                return fn(*args)
            except ValueError as e:
                raise _fail(400, str(e)) from None

    def upload(self, file: UploadFile) -> Any:
        data = file.file.read(self.limits.max_upload_bytes + 1)
        try:
            return read_upload(data, self.limits)
        except UploadError as e:
            raise _fail(e.status, str(e)) from None


def create_app(models: ModelSet, store: VoteStore, limits: Limits | None = None,
               allowed_hosts: list[str] | None = None) -> FastAPI:
    """The studio for ``models``, recording votes in ``store``.

    ``allowed_hosts`` are the ``Host`` header values served (default: loopback names, for a server on 127.0.0.1).
    """
    limits = limits or Limits()
    hosts = allowed_hosts if allowed_hosts is not None else allowed_hosts_for("127.0.0.1")
    app = FastAPI(title="ganforge studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(GuardMiddleware, allowed_hosts=hosts, max_body=limits.max_upload_bytes + 64 * 1024)
    app.state.models, app.state.store, app.state.limits = models, store, limits
    studio = _Studio(models, store, limits)
    for add_routes in (_page_routes, _generation_routes, _upload_routes, _game_routes, _timeline_routes):
        add_routes(app, studio)

    @app.exception_handler(ValueError)
    def value_error(request: Any, exc: ValueError) -> JSONResponse:  # a bad value that slipped past the checks
        return JSONResponse({"detail": str(exc)}, status_code=400)

    return app


def _page_routes(app: FastAPI, st: _Studio) -> None:
    pages = {name: (_static(name), media) for name, media in STATIC.items()}

    def page(name: str) -> Response:
        body, media = pages[name]
        return Response(body, media_type=media)

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return page("index.html")

    @app.get("/app.js", include_in_schema=False)
    def app_js() -> Response:
        return page("app.js")

    @app.get("/style.css", include_in_schema=False)
    def style_css() -> Response:
        return page("style.css")

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "models": len(st.models.models)}

    @app.get("/api/models")
    def list_models() -> dict[str, Any]:
        return {"models": [m.describe() for m in st.models.models.values()], "limits": st.limits.to_dict()}


def _generation_routes(app: FastAPI, st: _Studio) -> None:
    limits = st.limits

    @app.post("/api/models/{name}/sample")
    def sample(name: str, body: SampleIn) -> dict[str, Any]:
        m = st.model_for(name, "sample")
        assert isinstance(m, GeneratorModel)
        st.check_count("n", body.n, 1, limits.max_grid)
        st.check_seed(body.seed, body.seed + body.n - 1)
        st.check_count("number of latent sliders", len(body.latent), 0, min(limits.max_sliders, m.z_dim))
        if any(not -10.0 <= v <= 10.0 for v in body.latent):
            raise _fail(422, "latent slider values must be in [-10, 10]")
        grid = st.compute(m.sample, body.seed, body.n, body.psi, body.klass, list(body.latent))
        return {"image": data_url(grid), "seeds": [body.seed, body.seed + body.n - 1], "psi": body.psi,
                "width": int(grid.shape[1]), "height": int(grid.shape[0])}

    @app.post("/api/models/{name}/interpolate")
    def interpolate(name: str, body: InterpolateIn) -> dict[str, Any]:
        m = st.model_for(name, "interpolate")
        assert isinstance(m, GeneratorModel)
        st.check_seed(body.seed_a, body.seed_b)
        st.check_count("steps", body.steps, 2, limits.max_steps)
        strip = st.compute(m.interpolate, body.seed_a, body.seed_b, body.steps, body.psi, body.klass)
        return {"image": data_url(strip), "steps": body.steps}

    @app.post("/api/models/{name}/mix")
    def mix(name: str, body: MixIn) -> dict[str, Any]:
        m = st.model_for(name, "mixing")
        assert isinstance(m, GeneratorModel)
        st.check_count("number of row seeds", len(body.row_seeds), 1, limits.max_mix)
        st.check_count("number of column seeds", len(body.col_seeds), 1, limits.max_mix)
        st.check_seed(*body.row_seeds, *body.col_seeds)
        grid, layers = st.compute(m.mix, body.row_seeds, body.col_seeds, body.styles, body.psi, body.klass)
        return {"image": data_url(grid), "layers": layers}


def _upload_routes(app: FastAPI, st: _Studio) -> None:
    @app.post("/api/models/{name}/translate")
    def translate(name: str, file: UploadFile = File(...), direction: str = Form("a2b")) -> dict[str, Any]:
        m = st.model_for(name, "translate")
        assert isinstance(m, TranslatorModel)
        if direction not in ("a2b", "b2a"):
            raise _fail(422, f"direction must be 'a2b' or 'b2a', got {direction[:20]!r}")
        arr = st.upload(file)
        view, out = st.compute(m.translate, arr, direction)
        return {"input": data_url(view), "output": data_url(out), "direction": direction}

    @app.post("/api/models/{name}/detect")
    def detect(name: str, file: UploadFile = File(...)) -> dict[str, Any]:
        m = st.model_for(name, "detect")
        assert isinstance(m, DetectorModel)
        arr = st.upload(file)
        result = st.compute(m.detect, arr)
        return {**{k: v for k, v in result.items() if k != "view"}, "view": data_url(result["view"]),
                "width": int(arr.shape[1]), "height": int(arr.shape[0])}


def _game_routes(app: FastAPI, st: _Studio) -> None:
    """The "Which one is real?" game: issue a pair, take the answer, report the fool rates."""

    @app.post("/api/models/{name}/round")
    def new_round(name: str, body: RoundIn) -> dict[str, Any]:
        m = st.model_for(name, "real")
        assert isinstance(m, GeneratorModel)
        try:
            n = m.real_count()  # loads the pictures on first use, under the model's own lock
        except RuntimeError as e:
            raise _fail(503, str(e)) from None
        with st.models.lock:
            index, seed = st.rng.randrange(n), st.rng.randrange(st.limits.max_seed + 1)
            real, label = m.real_picture(index)
            klass = (label if label is not None else st.rng.randrange(m.c_dim)) if m.c_dim else None
            try:
                fake = m.fake_picture(seed, body.psi, klass)
            except ValueError as e:
                raise _fail(400, str(e)) from None
        real_side = st.rng.choice(SIDES)
        token = st.store.new_round(m.name, seed, body.psi, klass, index, real_side)
        left, right = (real, fake) if real_side == "left" else (fake, real)
        return {"round": token, "model": m.name, "psi": body.psi, "left": data_url(left), "right": data_url(right)}

    @app.post("/api/rounds/{token}/answer")
    def answer(token: str, body: AnswerIn) -> dict[str, Any]:
        if not TOKEN_PATTERN.match(token):
            raise _fail(404, "unknown round")
        if body.choice not in SIDES:
            raise _fail(422, f"choice must be one of {SIDES}, got {body.choice[:20]!r}")
        if body.response_ms is not None and not 0 <= body.response_ms <= 3_600_000:
            raise _fail(422, f"response_ms must be in [0, 3600000], got {body.response_ms}")
        if body.rater is not None and not NAME_PATTERN.match(body.rater):
            raise _fail(422, "rater must be 1-64 letters, digits, '_', '-' or '.'")
        try:
            result = st.store.answer(token, body.choice, body.response_ms, body.rater)
        except RoundError as e:
            raise _fail(e.status, str(e)) from None
        return {"correct": result.correct, "fooled": not result.correct, "real_side": result.real_side,
                "votes": st.store.count()}

    @app.get("/api/results")
    def results() -> dict[str, Any]:
        votes = st.store.votes()
        return {"votes": len(votes), "rows": [r.to_dict() for r in fool_rates(votes)]}


def _timeline_routes(app: FastAPI, st: _Studio) -> None:
    @app.get("/api/models/{name}/timeline")
    def timeline(name: str) -> dict[str, Any]:
        return st.model_for(name).timeline()

    @app.get("/api/models/{name}/timeline/{index}")
    def timeline_frame(name: str, index: int) -> Response:
        m = st.model_for(name)
        try:
            return Response(m.frame_png(index), media_type="image/png")
        except IndexError as e:
            raise _fail(404, str(e)) from None
        except OSError:  # the run's folder changed under us (a frame pruned or moved)
            raise _fail(404, f"timeline frame {index} of {name} is no longer readable") from None
