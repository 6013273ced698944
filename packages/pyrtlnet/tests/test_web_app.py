"""The web app's JSON API, through Starlette's test client.

Expected values come from qnn-ref (``run_litert``, ``run_numpy`` on the same pixels) and from
the architecture (tiles, columns, cycles), never from the server's own code.
"""

import dataclasses
import json
import math
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import uvicorn
from starlette.testclient import TestClient

from pyrtlnet.web import MAX_REQUEST_BYTES, center_digit, create_app, load_models, open_socket
from qnn_ref import (
    Model,
    Outputs,
    default_model_path,
    load_mnist,
    preprocess,
    read_model,
    run_litert,
    run_numpy,
)

IMAGES = range(12)


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(load_models()))


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    return load_mnist("test")


@pytest.fixture(scope="module")
def model() -> Model:
    return read_model(default_model_path())


def _golden(model: Model, image: np.ndarray) -> dict[str, Outputs]:
    """qnn-ref's LiteRT and NumPy outputs for one image."""
    x = preprocess(image[None], model.input_shape)
    return {"litert": run_litert(model, x), "numpy": run_numpy(model, x)}


def _assert_matches(answer: dict, golden: Outputs) -> None:
    assert answer["prediction"] == int(golden.predictions[0])
    assert answer["input"] == golden.input[0].tolist()
    assert answer["layers"] == [layer[0].tolist() for layer in golden.layers]


def test_models_lists_the_shipped_model_with_its_layers(client, model):
    response = client.get("/api/models")
    assert response.status_code == 200
    (served,) = response.json()["models"]
    assert served["name"] == "mlp"
    assert served["input_shape"] == list(model.input_shape)
    assert [(layer["in_features"], layer["units"]) for layer in served["layers"]] == [
        (layer.in_features, layer.units) for layer in model.layers
    ]


@pytest.mark.parametrize("index", IMAGES)
def test_every_backend_matches_qnn_ref_on_test_images(client, mnist, model, index):
    image = mnist[0][index]
    response = client.post("/api/infer", json={"model": "mlp", "pixels": image.tolist()})
    assert response.status_code == 200
    answer = response.json()
    golden = _golden(model, image)
    # LiteRT and NumPy are qnn-ref's; the hardware must equal both in every int8 value.
    _assert_matches(answer["backends"]["litert"], golden["litert"])
    _assert_matches(answer["backends"]["numpy"], golden["numpy"])
    _assert_matches(answer["backends"]["hardware"], golden["litert"])
    assert answer["agreement"] is True
    assert answer["differences"] == []
    assert answer["image"] == image.tolist()
    assert answer["input"]["values"] == golden["litert"].input[0].tolist()


def test_a_drawing_is_centred_before_the_model_sees_it(client, mnist, model):
    drawn = np.zeros((28, 28), np.uint8)
    drawn[:14, :14] = mnist[0][0][::2, ::2]  # small and in a corner
    answer = client.post("/api/infer", json={"pixels": drawn.tolist(), "center": True}).json()
    centred = center_digit(drawn)
    assert answer["image"] == centred.tolist()
    golden = _golden(model, centred)
    _assert_matches(answer["backends"]["hardware"], golden["litert"])
    _assert_matches(answer["backends"]["numpy"], golden["numpy"])


def test_cycles_are_the_same_for_every_image_and_match_the_trace(client, mnist):
    cycles = {
        client.post("/api/infer", json={"pixels": mnist[0][i].tolist()}).json()["cycles"]
        for i in range(3)
    }
    assert len(cycles) == 1  # the schedule is fixed at build time
    trace = client.post("/api/trace", json={"pixels": mnist[0][0].tolist()}).json()
    # Counted from `start` to `done` in the traced waveform, not taken from the plan.
    assert trace["measured_cycles"] == cycles.pop()


@pytest.mark.parametrize("layer", [0, 1])
def test_trace_shows_each_tile_computing_and_each_column_draining(client, mnist, model, layer):
    dense = model.layers[layer]
    body = {"pixels": mnist[0][3].tolist(), "layer": layer}
    answer = client.post("/api/trace", json=body).json()
    cols = answer["array"][1]
    assert answer["layer"] == layer
    tiles = [tuple(tile[:2]) for tile in answer["tiles"] if tile is not None]
    # One image: one row tile; ceil(units / cols) column tiles, in order, k cycles each, one
    # operand word (kk = 0 .. k-1) per cycle.
    expected_tiles = [(0, nt) for nt in range(math.ceil(dense.units / cols))]
    assert list(dict.fromkeys(tiles)) == expected_tiles
    for tile in expected_tiles:
        words = [t[2] for t in answer["tiles"] if t is not None and tuple(t[:2]) == tile]
        assert words == list(range(dense.in_features))
    # Every result column leaves the array once, in increasing order, one per cycle of a tile.
    drained = [drain[1] for drain in answer["drains"] if drain is not None]
    assert drained == list(range(dense.units))
    assert answer["drains"][-1] is not None  # the span ends with the last column


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{", 400, "request body is not valid JSON"),
        (b"[1, 2]", 422, "request body must be a JSON object, not list"),
        (b'{"model": "mlp"}', 422, "missing field 'pixels': 28 rows of 28 grey values 0-255"),
        (
            json.dumps({"pixels": [[0] * 28] * 27}).encode(),
            422,
            "pixels must be 28 rows of 28 grey values 0-255, not 27 rows",
        ),
        (
            json.dumps({"pixels": "black"}).encode(),
            422,
            "pixels must be 28 rows of 28 grey values 0-255, not str",
        ),
        (
            json.dumps({"pixels": [[0] * 28] * 27 + [[0] * 29]}).encode(),
            422,
            "pixels[27] must be 28 grey values 0-255, not 29 values",
        ),
        (
            json.dumps({"pixels": [[0] * 28] * 3 + [[0] * 5 + [256] + [0] * 22] * 25}).encode(),
            422,
            "pixels[3][5] must be in 0-255, not 256",
        ),
        (
            json.dumps({"pixels": [[-1] * 28] * 28}).encode(),
            422,
            "pixels[0][0] must be in 0-255, not -1",
        ),
        (
            json.dumps({"pixels": [[0.5] * 28] * 28}).encode(),
            422,
            "pixels[0][0] must be an integer 0-255, not 0.5",
        ),
        (
            json.dumps({"pixels": [["7"] * 28] * 28}).encode(),
            422,
            "pixels[0][0] must be an integer 0-255, not '7'",
        ),
        (
            json.dumps({"pixels": [[True] * 28] * 28}).encode(),
            422,
            "pixels[0][0] must be an integer 0-255, not True",
        ),
        (
            json.dumps({"pixels": [[0] * 28] * 28}).replace("0", "NaN", 1).encode(),
            422,
            "JSON must not hold NaN; pixels are integers 0-255",
        ),
        (
            json.dumps({"model": "cnn", "pixels": [[0] * 28] * 28}).encode(),
            404,
            "unknown model 'cnn'; the served models are mlp",
        ),
        (
            json.dumps({"pixel": [[0] * 28] * 28}).encode(),
            422,
            "unknown field 'pixel'; the fields are model, pixels, center",
        ),
        (
            json.dumps({"pixels": [[0] * 28] * 28, "center": "yes"}).encode(),
            422,
            "center must be true or false, not 'yes'",
        ),
        (
            b'{"pixels": [' + b" " * MAX_REQUEST_BYTES + b"]}",
            413,
            f"request body larger than {MAX_REQUEST_BYTES} bytes; send one 28x28 image",
        ),
    ],
)
def test_bad_requests_get_a_json_error_and_the_server_keeps_serving(
    client, mnist, body, status, message
):
    response = client.post("/api/infer", content=body)
    assert response.status_code == status
    assert response.json()["error"].startswith(message)
    again = client.post("/api/infer", json={"pixels": mnist[0][0].tolist()})
    assert again.status_code == 200


def test_a_body_sent_in_chunks_is_limited_too(client):
    def chunks():
        for _ in range(MAX_REQUEST_BYTES // 1024 + 2):
            yield b" " * 1024

    response = client.post("/api/infer", content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (2, "layer must be an integer 0 to 1, not 2"),
        ("0", "layer must be an integer 0 to 1, not '0'"),
    ],
)
def test_trace_refuses_a_layer_the_model_does_not_have(client, layer, message):
    body = {"pixels": [[0] * 28] * 28, "layer": layer}
    response = client.post("/api/trace", json=body)
    assert response.status_code == 422
    assert response.json() == {"error": message}


def test_unknown_routes_and_methods_answer_json(client):
    missing = client.get("/api/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "GET /api/nothing: Not Found"}
    wrong = client.get("/api/infer")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "GET /api/infer: Method Not Allowed"}


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200
    assert 'data-testid="canvas"' in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/{name}").status_code == 200
    # Nothing from the internet: every script and stylesheet is the server's own.
    assert "http://" not in page.text
    assert "https://" not in page.text


def test_samples_are_mnist_test_images_of_every_digit(client, mnist):
    samples = client.get("/api/samples").json()["samples"]
    assert [sample["label"] for sample in samples] == list(range(10))
    for sample in samples:
        assert sample["pixels"] == mnist[0][sample["index"]].tolist()
        assert sample["label"] == int(mnist[1][sample["index"]])


def test_concurrent_requests_share_the_simulation_safely(client, mnist, model):
    indices = list(range(20, 36))

    def infer(index: int) -> dict:
        return client.post("/api/infer", json={"pixels": mnist[0][index].tolist()}).json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(infer, indices))
    for index, answer in zip(indices, answers, strict=True):
        golden = _golden(model, mnist[0][index])
        _assert_matches(answer["backends"]["hardware"], golden["litert"])


def test_models_given_by_path_are_served_under_their_file_name(tmp_path):
    copy = tmp_path / "my-model.tflite"
    copy.write_bytes(default_model_path().read_bytes())
    models = load_models([copy, default_model_path()])
    assert list(models) == ["mlp", "my-model"]
    assert models["my-model"].model.path == copy.resolve()
    client = TestClient(create_app(models))
    names = [model["name"] for model in client.get("/api/models").json()["models"]]
    assert names == ["mlp", "my-model"]
    body = {"model": "my-model", "pixels": [[0] * 28] * 28}
    assert client.post("/api/infer", json=body).json()["model"] == "my-model"


class _OffByOne:
    """An accelerator whose hardware gets one value of one layer wrong."""

    def __init__(self, accelerator, layer: int) -> None:
        self._accelerator, self._layer = accelerator, layer

    def run(self, q):
        result = self._accelerator.run(q)
        layers = [layer.copy() for layer in result.outputs.layers]
        layers[self._layer][0, 3] ^= 1
        outputs = Outputs(input=q, layers=tuple(layers), predictions=result.predictions)
        return dataclasses.replace(result, outputs=outputs)


@pytest.mark.parametrize("layer", [0, 1])
def test_one_wrong_value_anywhere_breaks_the_agreement(mnist, layer):
    served = load_models()["mlp"]
    served.accelerator = _OffByOne(served.accelerator, layer)
    answer = TestClient(create_app({"mlp": served})).post(
        "/api/infer", json={"pixels": mnist[0][0].tolist()}
    )
    assert answer.json()["agreement"] is False
    assert answer.json()["differences"] == [
        {"backend": "hardware", "tensor": f"layer {layer}", "values": 1}
    ]


class _Slow:
    """An accelerator that takes a second per run, like a large design would."""

    def __init__(self, accelerator) -> None:
        self._accelerator = accelerator

    def run(self, q):
        time.sleep(1.0)
        return self._accelerator.run(q)


def test_a_slow_gate_level_run_does_not_hold_up_other_requests(mnist):
    served = load_models()["mlp"]
    served.accelerator = _Slow(served.accelerator)
    sock = open_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app({"mlp": served}), lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        while not server.started:
            time.sleep(0.01)
        body = json.dumps({"pixels": mnist[0][0].tolist()}).encode()
        slow = urllib.request.Request(url + "/api/infer", data=body)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(lambda: urllib.request.urlopen(slow, timeout=30).read())
            time.sleep(0.2)  # the slow run has started
            began = time.perf_counter()
            with urllib.request.urlopen(url + "/api/models", timeout=30) as response:
                assert response.status == 200
            waited = time.perf_counter() - began
            assert not pending.done()
            assert json.loads(pending.result())["agreement"] is True
        assert waited < 0.5
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
