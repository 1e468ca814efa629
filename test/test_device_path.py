"""The GPU path's logic, checked on the CPU (CI has no GPU): ``inference/device_path.py``.

The same device-agnostic code runs on CUDA; here it runs on CPU tensors and is compared with
the host path (OpenCV resize, numpy conversion, ``CloudBuilder``). ``GraphRunner`` runs its
static-buffer bookkeeping eagerly off a GPU; a forced capture on the CPU exercises the fallback.
"""

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from mono_depth_ros.core.geometry import CloudBuilder
from mono_depth_ros.core.pipeline import FramePipeline, PipelineConfig
from mono_depth_ros.inference.backends import resolve_backend, tensorrt_providers
from mono_depth_ros.inference.device_path import DeviceFrame, GraphRunner, area_matrix
from mono_depth_ros.inference.estimator import DepthEstimator, Prediction
from mono_depth_ros.inference.preprocess import prepare
from mono_depth_ros.models import get_spec
from mono_depth_ros.models.spec import OUTPUT_KINDS, RELATIVE_KINDS, output_to_metric_depth

CPU = torch.device("cpu")
K = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])


def _image(h=480, w=640, seed=0):
    rng = np.random.default_rng(seed)
    # smooth content (a real image's statistics matter less than exercising every weight)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("src,dst", [((480, 640), (192, 256)), ((720, 1280), (192, 256)),
                                     ((250, 333), (96, 128)), ((192, 256), (192, 128))])
def test_area_matrix_is_opencv_inter_area(src, dst):
    img = _image(*src)
    want = cv2.resize(img, (dst[1], dst[0]), interpolation=cv2.INTER_AREA).astype(np.float32)
    x = torch.from_numpy(img).permute(2, 0, 1).float()
    got = area_matrix(src[0], dst[0]) @ x @ area_matrix(src[1], dst[1]).T
    # OpenCV rounds to uint8: within half a grey level (+ float error)
    assert np.abs(got.permute(1, 2, 0).numpy() - want).max() <= 0.5 + 1e-3


def test_area_matrix_rows_sum_to_one_and_refuses_enlarging():
    m = area_matrix(640, 256)
    np.testing.assert_allclose(m.sum(1).numpy(), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="shrink"):
        area_matrix(100, 200)


@pytest.fixture(scope="module")
def estimators():
    torch.manual_seed(0)
    kw = dict(model="fastdepth", device="cpu", backend="torch")
    return DepthEstimator(device_path="off", **kw), DepthEstimator(device_path="on", **kw)


@pytest.mark.parametrize("hw", [(480, 640), (120, 160)])  # shrink, and enlarge to 192x256
def test_device_path_matches_the_host_path(estimators, hw):
    host, dev = estimators
    rgb = _image(*hw, seed=1)
    Ks = K.copy()
    Ks[:2] *= hw[1] / 640
    x_host = prepare(rgb, host.spec, host.input_size, CPU).x
    x_dev = dev._device_frame.prepare(dev._device_frame.upload(rgb), dev.spec, dev.input_size).x
    assert x_dev.shape == x_host.shape
    # OpenCV rounds its uint8 result (and its bilinear uses fixed-point weights): one grey level
    assert (x_dev - x_host).abs().max() <= 1.0 / 255 / 0.5 + 1e-5
    a, b = host.predict(rgb, Ks), dev.predict(rgb, Ks)
    assert np.array_equal(np.isnan(a.depth), np.isnan(b.depth))
    rel = np.abs(a.depth - b.depth) / a.depth
    assert np.nanmedian(rel) < 0.01 and np.nanmax(rel) < 0.1
    assert b.points is None  # no cloud asked for


@pytest.mark.parametrize("decimation,with_rgb", [(1, True), (3, True), (2, False)])
def test_device_cloud_is_the_cloud_builders(estimators, decimation, with_rgb):
    _, dev = estimators
    rgb = _image(seed=2)
    pred = dev.predict(rgb, K, cloud_decimation=decimation, cloud_rgb=with_rgb)
    want = CloudBuilder(decimation, with_rgb).build(pred.depth, K, rgb if with_rgb else None)
    assert pred.points.shape == want.points.shape
    # bit for bit: same float32 products, same packed 0x00RRGGBB, NaN where depth is NaN
    assert np.array_equal(pred.points.view(np.uint32), want.points.view(np.uint32))


def test_device_path_arrays_survive_the_next_frame(estimators):
    _, dev = estimators
    first = dev.predict(_image(seed=3), K, cloud_decimation=4)
    keep = first.depth.copy(), first.points.copy()
    dev.predict(_image(seed=4), K, cloud_decimation=4)
    assert np.array_equal(first.depth, keep[0], equal_nan=True)
    assert np.array_equal(first.points.view(np.uint32), keep[1].view(np.uint32))


def test_pipeline_takes_the_device_cloud_unless_a_scaler_changes_depth():
    calls = []

    class Est:
        builds_clouds, palette = True, None

        def segmentation_info(self, key):
            return None

        def predict(self, rgb, K, cloud_decimation=None, cloud_rgb=True):
            calls.append(cloud_decimation)
            pts = None if cloud_decimation is None else np.full((2, 2, 4), 7.0, np.float32)
            return Prediction(depth=np.ones((4, 4), np.float32), points=pts,
                              timings=dict(preprocess=0, inference=0, postprocess=0))

    pipe = FramePipeline(Est(), PipelineConfig(cloud_decimation=2))
    res = pipe.process(np.zeros((4, 4, 3), np.uint8), K, ("depth", "points"))
    assert calls == [2] and (res.points.points == 7.0).all() and res.points.point_step == 16
    pipe.process(np.zeros((4, 4, 3), np.uint8), K, ("depth",))
    assert calls == [2, None]  # no cloud wanted: none asked for


class _Net(torch.nn.Module):
    def __init__(self, as_dict=False):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)
        self.as_dict = as_dict

    def forward(self, x):
        y = self.conv(x)
        return {"depth": y, "aux": y.mean(dim=(2, 3))} if self.as_dict else y


@torch.inference_mode()
def test_graph_runner_captures_once_per_shape_and_reuses_its_buffers():
    net = _Net().eval()
    run = GraphRunner(net, CPU, max_graphs=2)
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    out_a = run(a)
    torch.testing.assert_close(out_a, net(a))
    ptr = out_a.data_ptr()
    out_b = run(b)
    assert run.captures == 1 and out_b.data_ptr() == ptr  # static output, overwritten
    torch.testing.assert_close(out_b, net(b))
    run(torch.rand(1, 3, 16, 8))  # a new camera size: captured anew
    run(b)
    assert run.captures == 2
    run(torch.rand(1, 3, 4, 4))  # third shape: the least recently used (16x8) is dropped
    run(b)
    assert run.captures == 3
    run(torch.rand(1, 3, 16, 8))
    assert run.captures == 4


@torch.inference_mode()
def test_graph_runner_dict_outputs_and_capture_failure_falls_back_to_eager():
    net = _Net(as_dict=True).eval()
    run = GraphRunner(net, CPU, capture=True)  # no CUDA here: the capture fails
    x = torch.rand(1, 3, 8, 8)
    out = run(x)
    assert run.fallbacks == 1 and run.last_error
    torch.testing.assert_close(out["depth"], net(x)["depth"])
    torch.testing.assert_close(run(x)["aux"], net(x)["aux"])
    assert run.captures == 1


def test_cuda_only_backends_are_refused_off_a_gpu_with_the_reason():
    for backend in ("cuda_graph", "tensorrt"):
        with pytest.raises(ValueError, match="needs a CUDA device"):
            resolve_backend(backend, "fastdepth", CPU, trained=True)
    with pytest.raises(ValueError, match="stateful"):
        resolve_backend("cuda_graph", "siamese_convlstm", torch.device("cuda"), trained=True,
                        stateful=True)
    assert resolve_backend("tensorrt", "onnx", torch.device("cuda"), True, onnx_file=True)[0] \
        == "tensorrt"


def test_tensorrt_needs_the_provider():
    ort = pytest.importorskip("onnxruntime")
    if "TensorrtExecutionProvider" in ort.get_available_providers():
        providers = tensorrt_providers("/tmp/trt")
        assert providers[0][0] == "TensorrtExecutionProvider"
    else:
        with pytest.raises(ValueError, match="onnxruntime-gpu"):
            tensorrt_providers("/tmp/trt")


@pytest.mark.parametrize("kind", [k for k in OUTPUT_KINDS if k not in RELATIVE_KINDS])
def test_metric_conversion_is_the_same_on_tensors(kind):
    spec = dataclasses.replace(get_spec("fastdepth"), output_kind=kind, stereo_baseline=0.54)
    out = np.random.default_rng(5).uniform(-0.2, 2.0, (6, 7)).astype(np.float32)
    a = output_to_metric_depth(out, spec, fx=500.0, width=640)
    b = output_to_metric_depth(torch.from_numpy(out), spec, fx=500.0, width=640)
    assert isinstance(b, torch.Tensor) and b.dtype == torch.float32
    np.testing.assert_allclose(b.numpy(), a, rtol=1e-6)


def test_device_frame_masks_the_range_to_nan():
    spec = get_spec("fastdepth")
    df = DeviceFrame(CPU, 0.5, 2.0)
    out = torch.tensor([[[[0.1, 1.0], [3.0, 2.0]]]])
    depth, unmasked, points = df.finish(out, df.prepare(torch.zeros(2, 2, 3, dtype=torch.uint8),
                                                        spec, (2, 2)),
                                        dataclasses.replace(spec, rescale_by_focal=False),
                                        np.eye(3), (2, 2), fx=1.0, cloud_decimation=1)
    np.testing.assert_array_equal(unmasked, np.float32([[0.1, 1.0], [3.0, 2.0]]))
    assert np.isnan(depth[0, 0]) and np.isnan(depth[1, 0]) and depth[1, 1] == 2.0
    assert points.shape == (2, 2, 3) and np.isnan(points[0, 0]).all()
