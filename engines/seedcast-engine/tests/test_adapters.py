"""Import-level tests of the vLLM and SGLang adapters against stub modules.

vLLM and SGLang are not installed in CI (nor on the GPU machine): these tests pin the API
surface the adapters rely on (names, signatures, registration) and the no-agent fallback.
They do not prove the adapters work inside a real engine; docs/engines.md says so."""

import sys
import types
from dataclasses import dataclass, field

import pytest


class FakeModel:
    def __init__(self, kind):
        self.kind = kind

    def eval(self):
        return self


def install(monkeypatch, modules):
    for name, mod in modules.items():
        monkeypatch.setitem(sys.modules, name, mod)


@pytest.fixture
def fake_vllm(monkeypatch):
    registry = {}
    calls = []

    @dataclass
    class LoadConfig:
        load_format: str = "auto"
        model_loader_extra_config: dict = field(default_factory=dict)

    class BaseModelLoader:
        def __init__(self, load_config):
            self.load_config = load_config

    class NamedLoader(BaseModelLoader):
        def download_model(self, model_config):
            calls.append(("download", self.load_config.load_format))

        def load_weights(self, model, model_config):
            calls.append(("load_weights", self.load_config.load_format))

        def load_model(self, vllm_config, model_config, prefix=""):
            calls.append(("load_model", self.load_config.load_format, prefix))
            return FakeModel(self.load_config.load_format)

    def register_model_loader(name):
        def deco(cls):
            registry[name] = cls
            return cls
        return deco

    def get_model_loader(load_config):
        assert load_config.model_loader_extra_config == {}
        return registry.get(load_config.load_format, NamedLoader)(load_config)

    vllm = types.ModuleType("vllm")
    vllm.__version__ = "0.11.0"
    me = types.ModuleType("vllm.model_executor")
    ml = types.ModuleType("vllm.model_executor.model_loader")
    ml.register_model_loader = register_model_loader
    ml.get_model_loader = get_model_loader
    ml.BaseModelLoader = BaseModelLoader
    dist = types.ModuleType("vllm.distributed")
    dist.get_tensor_model_parallel_rank = lambda: 1
    dist.get_tensor_model_parallel_world_size = lambda: 2
    dist.get_pp_group = lambda: types.SimpleNamespace(world_size=1, rank_in_group=0)
    install(monkeypatch, {"vllm": vllm, "vllm.model_executor": me, "vllm.model_executor.model_loader": ml,
                          "vllm.distributed": dist})
    import seedcast_engine.vllm_plugin as plugin

    monkeypatch.setattr(plugin, "_registered", False)
    return types.SimpleNamespace(registry=registry, calls=calls, LoadConfig=LoadConfig, BaseModelLoader=BaseModelLoader,
                                 plugin=plugin)


def test_vllm_entry_point_registers_the_load_format(fake_vllm):
    fake_vllm.plugin.register()
    fake_vllm.plugin.register()  # idempotent (vLLM loads plugins in every process)
    cls = fake_vllm.registry["seedcast"]
    assert issubclass(cls, fake_vllm.BaseModelLoader)
    loader = cls(fake_vllm.LoadConfig(load_format="seedcast", model_loader_extra_config={"socket": "/s.sock", "model": "m"}))
    assert loader.options.socket == "/s.sock" and loader.options.model == "m"
    assert loader.load_config.model_loader_extra_config == {}
    loader.download_model(object())
    assert fake_vllm.calls[-1] == ("download", "auto")


def test_vllm_loader_without_agent_falls_back_to_storage(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("SEEDCAST_SOCKET", str(tmp_path / "absent.sock"))
    fake_vllm.plugin.register()
    cls = fake_vllm.registry["seedcast"]
    loader = cls(fake_vllm.LoadConfig(load_format="seedcast"))
    mc = types.SimpleNamespace(model="/models/x", revision=None, dtype="torch.bfloat16", quantization=None)
    model = loader.load_model(vllm_config=object(), model_config=mc, prefix="p")
    assert model.kind == "auto"
    assert ("load_model", "auto", "p") in fake_vllm.calls
    assert not any(c[:2] == ("load_model", "dummy") for c in fake_vllm.calls)


def test_vllm_loader_fallback_fail(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("SEEDCAST_SOCKET", str(tmp_path / "absent.sock"))
    monkeypatch.setenv("SEEDCAST_FALLBACK", "fail")
    fake_vllm.plugin.register()
    loader = fake_vllm.registry["seedcast"](fake_vllm.LoadConfig(load_format="seedcast"))
    mc = types.SimpleNamespace(model="m", revision="main", dtype="bfloat16", quantization=None)
    with pytest.raises(FileNotFoundError):
        loader.load_model(vllm_config=object(), model_config=mc)


def test_vllm_parallel_rank(fake_vllm):
    assert fake_vllm.plugin._parallel_rank() == (1, 2, 1, 2)


def test_options_validation(monkeypatch):
    from seedcast_engine.adapter import Options

    monkeypatch.setenv("SEEDCAST_MEMORY", "disk")
    with pytest.raises(ValueError):
        Options.load()
    monkeypatch.setenv("SEEDCAST_MEMORY", "host")
    o = Options.load({"ready_timeout": "5"})
    assert o.memory == "host" and o.ready_timeout == 5.0 and o.fallback == "storage"


def test_sglang_loader_shape(monkeypatch, tmp_path):
    calls = []

    class BaseModelLoader:
        def __init__(self, load_config):
            self.load_config = load_config

    class LoadFormat(str):
        def __new__(cls, v):
            return str.__new__(cls, v)

    @dataclass
    class LoadConfig:
        load_format: object = "auto"
        model_loader_extra_config: dict = field(default_factory=dict)

    class Named:
        def __init__(self, cfg):
            self.cfg = cfg

        def load_model(self, *, model_config, device_config):
            calls.append(str(self.cfg.load_format))
            return FakeModel(str(self.cfg.load_format))

        def download_model(self, model_config):
            calls.append("download")

    loader_mod = types.ModuleType("sglang.srt.model_loader.loader")
    loader_mod.BaseModelLoader = BaseModelLoader
    loader_mod.get_model_loader = lambda cfg: Named(cfg)
    lc = types.ModuleType("sglang.srt.configs.load_config")
    lc.LoadFormat = LoadFormat
    dist = types.ModuleType("sglang.srt.distributed")
    dist.get_tensor_model_parallel_rank = lambda: 0
    dist.get_tensor_model_parallel_world_size = lambda: 1
    sg = types.ModuleType("sglang")
    sg.__version__ = "0.5.3"
    install(monkeypatch, {"sglang": sg, "sglang.srt": types.ModuleType("sglang.srt"),
                          "sglang.srt.model_loader": types.ModuleType("sglang.srt.model_loader"),
                          "sglang.srt.model_loader.loader": loader_mod, "sglang.srt.configs": types.ModuleType("sglang.srt.configs"),
                          "sglang.srt.configs.load_config": lc, "sglang.srt.distributed": dist})
    sys.modules.pop("seedcast_engine.sglang_loader", None)
    import seedcast_engine.sglang_loader as sl

    assert issubclass(sl.SeedcastSGLangLoader, BaseModelLoader)
    monkeypatch.setenv("SEEDCAST_SOCKET", str(tmp_path / "absent.sock"))
    loader = sl.SeedcastSGLangLoader(LoadConfig(load_format=sl.SeedcastSGLangLoader))
    mc = types.SimpleNamespace(model_path="/m", revision=None, dtype="torch.float16", quantization=None)
    assert loader.load_model(model_config=mc, device_config=object()).kind == "auto"
    assert calls == ["auto"]
    assert sl._ranks() == (0, 1, 1, 1)
    sys.modules.pop("seedcast_engine.sglang_loader", None)
