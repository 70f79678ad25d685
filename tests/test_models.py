"""The three U-Nets: shapes, parameter counts, the five improvements, attention gates,
presets, decoder levels, ablations and the checkpoint round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from unet_lib.checkpoint import (CheckpointError, check_same_architecture, load_model,
                                 read_checkpoint, save_checkpoint)
from unet_lib.models import (IMPROVEMENTS, MODELS, PRESETS, AttentionGate, AttentionUNet,
                             ClassicUNet, DecoderLevel, ImprovedUNet, InvertedBottleneckBlock,
                             SeparableConv2d, UNet, build_model, count_parameters,
                             cumulative_improvements, improved_without, improvement_table)
from unet_lib.summary import signal_by_level


def classic_parameter_count(in_ch: int, out_ch: int, base: int, depth: int = 4) -> int:
    """Parameters of Ronneberger's U-Net worked out by hand: 3×3 convs with bias, 2×2
    transposed convs with bias, concatenated skips, 1×1 head."""
    widths = [base * 2 ** level for level in range(depth + 1)]
    conv3 = lambda cin, cout: cin * cout * 9 + cout  # noqa: E731
    total, previous = 0, in_ch
    for w in widths:
        total += conv3(previous, w) + conv3(w, w)
        previous = w
    for level in reversed(range(depth)):
        skip, below = widths[level], widths[level + 1]
        total += below * skip * 4 + skip + conv3(2 * skip, skip) + conv3(skip, skip)
    return total + widths[0] * out_ch + out_ch


def improved_parameter_count(in_ch: int, out_ch: int, base: int, depth: int = 4) -> int:
    """Parameters of the Improved U-Net worked out by hand: per level a 1×1 projection where
    the width changes, a 7×7 depthwise conv without bias, a batch norm (2C), a 1×1 expand to 4C
    and a 1×1 compress with biases; 2×2 transposed convs; additive skips; 1×1 head."""
    widths = [base * 2 ** level for level in range(depth + 1)]
    block = lambda c: c * 49 + 2 * c + (c * 4 * c + 4 * c) + (4 * c * c + c)  # noqa: E731
    total, previous = 0, in_ch
    for w in widths:
        total += (previous * w + w if previous != w else 0) + block(w)
        previous = w
    for level in reversed(range(depth)):
        skip, below = widths[level], widths[level + 1]
        total += below * skip * 4 + skip + block(skip)
    return total + widths[0] * out_ch + out_ch


@pytest.mark.parametrize("name", ["classic", "improved", "attention"])
@pytest.mark.parametrize("size", [(16, 16), (17, 33), (64, 64), (100, 72), (240, 240)])
def test_every_model_maps_any_size_to_logits_of_the_same_size(name, size):
    model = build_model(name, base_filters=4).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 4, *size))
    assert out.shape == (2, 3, *size)
    assert out.dtype == torch.float32


def test_classic_unet_has_the_hand_counted_parameters_7_76_million():
    assert count_parameters(ClassicUNet()) == classic_parameter_count(4, 3, 32) == 7_760_451


def test_improved_unet_has_the_hand_counted_parameters_4_44_million():
    assert count_parameters(ImprovedUNet()) == improved_parameter_count(4, 3, 32) == 4_444_323
    assert (count_parameters(build_model("improved", in_channels=2, out_channels=5,
                                         base_filters=8, depth=3))
            == improved_parameter_count(2, 5, 8, depth=3))


def test_improved_unet_has_clearly_fewer_parameters_than_classic():
    classic, improved = count_parameters(ClassicUNet()), count_parameters(ImprovedUNet())
    assert improved < 0.65 * classic
    assert 3.5e6 < improved < 5.5e6


def test_constructor_arguments_are_honoured():
    model = build_model("classic", in_channels=2, out_channels=5, base_filters=8)
    assert count_parameters(model) == classic_parameter_count(2, 5, 8)
    assert model.eval()(torch.zeros(1, 2, 32, 32)).shape == (1, 5, 32, 32)


def test_input_smaller_than_16_pixels_is_rejected_with_the_sizes_that_work():
    with pytest.raises(ValueError, match=r"at least 16×16.*got 15×40"):
        ClassicUNet()(torch.zeros(1, 4, 15, 40))


def test_wrong_channel_count_is_rejected_naming_both_counts():
    with pytest.raises(ValueError, match=r"expected 4 input channels.*got 3"):
        ClassicUNet(base_filters=4)(torch.zeros(1, 3, 32, 32))


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown model name 'unet'.*'classic', 'improved', "
                                         r"'attention'"):
        build_model("unet")


def test_padding_does_not_change_a_prediction_already_of_a_valid_size():
    """An input that needs padding gives, on the part it shares, the same logits as padding it
    ourselves by replication and cropping."""
    torch.manual_seed(0)
    model = ClassicUNet(base_filters=4).eval()
    x = torch.randn(1, 4, 30, 20)
    padded = F.pad(x, (0, 12, 0, 2), mode="replicate")  # to 32×32
    with torch.no_grad():
        assert torch.allclose(model(x), model(padded)[..., :30, :20], atol=1e-6)


# --- the five improvements, each switchable on its own ------------------------------------

def _modules(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def test_separable_switch_uses_depthwise_plus_pointwise_convolutions():
    model = UNet(**IMPROVEMENTS["separable"])
    separable = _modules(model, SeparableConv2d)
    assert len(separable) == 2 * 9  # two per level, 9 levels
    for conv in separable:
        assert conv.depthwise.groups == conv.depthwise.in_channels
        assert conv.pointwise.kernel_size == (1, 1)


def test_separable_conv_has_the_textbook_parameter_count():
    conv = SeparableConv2d(64, 128, 3, bias=False)
    assert count_parameters(conv) == 64 * 9 + 64 * 128


def test_batch_norm_switch_adds_a_norm_after_every_spatial_conv():
    assert not _modules(ClassicUNet(), nn.BatchNorm2d)
    assert len(_modules(UNet(**IMPROVEMENTS["batch_norm"]), nn.BatchNorm2d)) == 18


def test_kernel_switch_makes_every_spatial_conv_7x7():
    model = UNet(**IMPROVEMENTS["kernel_7x7"])
    sizes = {c.kernel_size for c in _modules(model, nn.Conv2d) if c.kernel_size != (1, 1)}
    assert sizes == {(7, 7)}


def test_inverse_bottleneck_expands_channels_four_times_then_compresses():
    model = UNet(**IMPROVEMENTS["inverse_bottleneck"])
    block = model.encoder[2]  # 128 channels
    pointwise = [c for c in _modules(block, nn.Conv2d)
                 if c.kernel_size == (1, 1) and c.in_channels != 64]
    assert [(c.in_channels, c.out_channels) for c in pointwise] == [(128, 512), (512, 128)]


def test_additive_skips_keep_the_decoder_input_at_the_skip_width():
    concat, additive = ClassicUNet(), UNet(**IMPROVEMENTS["additive_skips"])
    first_conv = lambda block: _modules(block, nn.Conv2d)[0]  # noqa: E731
    assert [first_conv(lv.block).in_channels for lv in concat.decoder] == [512, 256, 128, 64]
    assert [first_conv(lv.block).in_channels for lv in additive.decoder] == [256, 128, 64, 32]


def test_all_five_switches_together_are_the_improved_unet():
    together = {k: v for change in IMPROVEMENTS.values() for k, v in change.items()}
    assert UNet(**together).hparams == ImprovedUNet().hparams
    assert count_parameters(UNet(**together)) == count_parameters(ImprovedUNet())


@pytest.mark.parametrize("change", list(IMPROVEMENTS))
def test_each_improvement_alone_trains_one_step(change):
    torch.manual_seed(0)
    model = UNet(base_filters=4, **IMPROVEMENTS[change])
    x, y = torch.randn(2, 4, 32, 32), (torch.rand(2, 3, 32, 32) > 0.9).float()
    loss = F.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    # every weight gets a finite gradient, none of them all zero (a branch multiplied by 0,
    # or cut from the graph, would have one)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    before = loss.item()
    torch.optim.SGD(model.parameters(), lr=1e-2).step()  # downhill: the same batch fits better
    assert F.binary_cross_entropy_with_logits(model(x), y).item() < before



def test_a_depthwise_conv_in_nchw_computes_the_same_and_keeps_the_models_layout():
    from torch.utils._python_dispatch import TorchDispatchMode

    from unet_lib.models import DepthwiseConv2d, set_depthwise_nchw

    class ConvolutionStrides(TorchDispatchMode):  # the input's and weight's strides it gets
        seen: list = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.convolution.default:
                self.seen.append((args[0].stride(), args[1].stride()))
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    conv = DepthwiseConv2d(6, 7, bias=True).to(memory_format=torch.channels_last)
    x = torch.randn(2, 6, 12, 10).to(memory_format=torch.channels_last).requires_grad_()
    expected = F.conv2d(x, conv.weight, conv.bias, padding=3, groups=6)
    expected_grads = torch.autograd.grad(expected.square().sum(), (x, conv.weight, conv.bias))
    set_depthwise_nchw(nn.Sequential(conv))
    with ConvolutionStrides() as watch:
        out = conv(x)
    nchw = torch.empty(2, 6, 12, 10).stride(), torch.empty(6, 1, 7, 7).stride()
    assert watch.seen == [nchw]  # neither looks channels_last to PyTorch's backend choice
    assert out.is_contiguous(memory_format=torch.channels_last)  # the model's layout after it
    assert torch.allclose(out, expected, atol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), (x, conv.weight, conv.bias))
    for ours, reference in zip(grads, expected_grads):
        assert torch.allclose(ours, reference, atol=1e-4)


def test_a_depthwise_layer_loads_the_plain_convolution_older_checkpoints_hold():
    from unet_lib.models import DepthwiseConv2d

    torch.manual_seed(0)
    plain = nn.Conv2d(6, 6, 7, padding=3, groups=6, bias=False)  # what checkpoints before held
    layer = DepthwiseConv2d(6, 7, bias=False)
    layer.load_state_dict(plain.state_dict())  # strict: the same names and shapes
    x = torch.randn(1, 6, 9, 9)
    assert torch.equal(layer(x), plain(x))
    improved = build_model("improved", base_filters=4)
    assert any(isinstance(m, DepthwiseConv2d) for m in improved.modules())

# --- attention ---------------------------------------------------------------------------

def test_attention_maps_one_per_gate_deepest_first_in_0_1():
    model = AttentionUNet(base_filters=4).eval()
    with torch.no_grad():
        logits, maps = model(torch.randn(3, 4, 50, 37), return_attention=True)
    assert logits.shape == (3, 3, 50, 37)
    assert [tuple(m.shape) for m in maps] == [(3, 1, 7, 5), (3, 1, 13, 10), (3, 1, 25, 19),
                                              (3, 1, 50, 37)]
    assert all(float(m.min()) >= 0 and float(m.max()) <= 1 for m in maps)



def test_attention_maps_in_batches_are_the_maps_of_one_forward_pass():
    from unet_lib.attention import attention_maps

    torch.manual_seed(0)
    model = AttentionUNet(base_filters=4).eval()
    images = torch.randn(5, 4, 32, 32)
    with torch.no_grad():
        _, whole = model(images, return_attention=True)
    batched = attention_maps(model, images, batch_size=2, device="cpu")
    assert len(batched) == len(whole)
    for ours, reference in zip(batched, whole):
        assert ours.dtype == torch.float32 and torch.allclose(ours, reference, atol=1e-6)

def test_attention_gate_computes_the_additive_attention_formula():
    torch.manual_seed(1)
    gate = AttentionGate(skip_channels=6, gate_channels=5, inter_channels=3)
    x, g = torch.randn(2, 6, 8, 8), torch.randn(2, 5, 8, 8)
    out, alpha = gate(x, g)
    expected = torch.sigmoid(F.conv2d(F.relu(F.conv2d(x, gate.w_x.weight)
                                             + F.conv2d(g, gate.w_g.weight, gate.w_g.bias)),
                                      gate.psi.weight, gate.psi.bias))
    assert torch.allclose(alpha, expected, atol=1e-6)
    assert torch.allclose(out, x * expected, atol=1e-6)


def test_a_coarse_gating_signal_is_projected_then_resized_bilinearly():
    torch.manual_seed(2)
    gate = AttentionGate(skip_channels=6, gate_channels=5, inter_channels=3)
    x, g = torch.randn(2, 6, 8, 8), torch.randn(2, 5, 4, 4)
    _, alpha = gate(x, g)
    projected = F.conv2d(g, gate.w_g.weight, gate.w_g.bias)
    gating = F.interpolate(projected, size=(8, 8), mode="bilinear", align_corners=False)
    expected = torch.sigmoid(F.conv2d(F.relu(F.conv2d(x, gate.w_x.weight) + gating),
                                      gate.psi.weight, gate.psi.bias))
    assert alpha.shape == (2, 1, 8, 8)
    assert torch.allclose(alpha, expected, atol=1e-6)


def test_a_gate_on_uniform_features_gives_a_uniform_map_no_checkerboard():
    # Constant decoder features and a constant skip: nothing varies from pixel to pixel, so α
    # must not either. A gate driven by the 2×2 transposed convolution's output would stamp
    # its four kernel taps onto α as a 2-pixel checkerboard (the old design did).
    torch.manual_seed(0)
    level = DecoderLevel(8, 4, attention=True)
    torch.nn.init.normal_(level.up.weight)  # four clearly different taps
    coarse = torch.randn(1, 8, 1, 1).expand(1, 8, 6, 6)
    skip = torch.randn(1, 4, 1, 1).expand(1, 4, 12, 12)
    with torch.no_grad():
        up = level.up(coarse)
        _, alpha = level(coarse, skip)
    assert float(up[0, 0].max() - up[0, 0].min()) > 0.1  # the up-sampling itself is patterned
    assert alpha.shape == (1, 1, 12, 12)
    assert float(alpha.max() - alpha.min()) < 1e-6


def test_return_attention_on_a_model_without_gates_is_a_clear_error():
    with pytest.raises(ValueError, match="attention gates"):
        ClassicUNet(base_filters=4)(torch.zeros(1, 4, 32, 32), return_attention=True)


def test_attention_gates_are_the_only_difference_from_classic():
    classic, attention = ClassicUNet(), AttentionUNet()
    gates = sum(count_parameters(level.gate) for level in attention.decoder)
    assert count_parameters(attention) == count_parameters(classic) + gates
    # per gate at half the skip width s: W_x (s → s/2, no bias), W_g from the coarser level
    # (2s → s/2, with bias) and psi (s/2 → 1, with bias)
    by_hand = sum(s * (s // 2) + 2 * s * (s // 2) + s // 2 + s // 2 + 1
                  for s in (256, 128, 64, 32))
    assert gates == by_hand


def test_inverted_bottleneck_computes_the_documented_formula():
    torch.manual_seed(2)
    block = InvertedBottleneckBlock(6, 8, kernel_size=7, separable=True, batch_norm=True,
                                    expansion=4).eval()
    spatial, norm, expand, _, compress = block.residual
    x = torch.randn(2, 6, 9, 9)
    projected = block.project(x)
    branch = compress(F.relu(expand(norm(spatial(projected)))))
    with torch.no_grad():
        assert torch.allclose(block(x), F.relu(projected + branch), atol=1e-6)
    assert spatial.groups == 8 and spatial.bias is None and spatial.kernel_size == (7, 7)
    assert (expand.in_channels, expand.out_channels) == (8, 32)


# --- one module per decoder level --------------------------------------------------------

@pytest.mark.parametrize("name", ["classic", "improved", "attention"])
@pytest.mark.parametrize("depth", [2, 4])
def test_each_decoder_level_is_one_module_deepest_first(name, depth):
    model = build_model(name, base_filters=4, depth=depth)
    assert len(model.decoder) == depth
    assert all(isinstance(level, DecoderLevel) for level in model.decoder)
    widths = [4 * 2 ** level for level in reversed(range(depth))]
    assert [level.up.out_channels for level in model.decoder] == widths
    assert [level.up.in_channels for level in model.decoder] == [2 * w for w in widths]
    gates = [level.gate for level in model.decoder]
    if name == "attention":
        assert all(isinstance(gate, AttentionGate) for gate in gates)
    else:
        assert gates == [None] * depth
    assert not hasattr(model, "up") and not hasattr(model, "gates")


@pytest.mark.parametrize("additive, attention", [(False, False), (True, False), (False, True)])
def test_decoder_level_is_gate_by_coarse_features_then_up_merge_block(additive, attention):
    torch.manual_seed(3)
    level = DecoderLevel(8, 4, additive_skips=additive, attention=attention).eval()
    x, skip = torch.randn(2, 8, 5, 6), torch.randn(2, 4, 10, 12)
    with torch.no_grad():
        y, alpha = level(x, skip)
        up = level.up(x)
        gated, expected_alpha = level.gate(skip, x) if attention else (skip, None)
        merged = up + gated if additive else torch.cat([gated, up], dim=1)
        assert torch.equal(y, level.block(merged))
    assert y.shape == (2, 4, 10, 12)
    if attention:
        assert alpha.shape == (2, 1, 10, 12) and torch.equal(alpha, expected_alpha)
    else:
        assert alpha is None


# --- presets -------------------------------------------------------------------------------

def test_presets_are_unet_arguments_and_the_classic_is_unet_defaults():
    assert list(PRESETS) == list(MODELS) == ["classic", "improved", "attention"]
    assert UNet().hparams == {**UNet().hparams, **PRESETS["classic"]}
    for name, preset in PRESETS.items():
        model = build_model(name, base_filters=4)
        assert type(model) is UNet
        assert model.hparams == {**UNet(base_filters=4).hparams, **preset}
        assert MODELS[name](base_filters=4).hparams == model.hparams
        assert model.preset_name == name
        assert f"preset={name!r}" in repr(model).splitlines()[1]


def test_the_named_factories_build_the_same_models_as_before():
    model = ClassicUNet(in_channels=4, out_channels=3, base_filters=32)
    assert type(model) is UNet and model.preset_name == "classic"
    assert count_parameters(model) == 7_760_451
    assert count_parameters(ImprovedUNet(base_filters=32)) == 4_444_323
    attention = AttentionUNet(inter_channels=8)
    assert attention.preset_name == "attention"  # the gate width is a size, not a switch
    assert attention.decoder[0].gate.w_x.out_channels == 8


def test_build_model_overrides_a_preset_and_the_model_then_is_custom():
    model = build_model("improved", kernel_size=3, base_filters=4)
    sizes = {c.kernel_size for c in _modules(model, nn.Conv2d) if c.kernel_size != (1, 1)}
    assert sizes == {(3, 3)}
    assert model.hparams == {**ImprovedUNet(base_filters=4).hparams, "kernel_size": 3}
    assert model.preset_name == "custom"
    assert build_model("classic", base_filters=8, depth=3).preset_name == "classic"


# --- ablations -----------------------------------------------------------------------------

@pytest.mark.parametrize("change", list(IMPROVEMENTS))
def test_improved_without_switches_exactly_that_change_back_to_the_classic(change):
    model = improved_without(change, base_filters=4)
    off = {key: PRESETS["classic"][key] for key in IMPROVEMENTS[change]}
    assert model.hparams == {**ImprovedUNet(base_filters=4).hparams, **off}


def test_improved_without_batch_norm_has_no_batch_norm():
    assert not _modules(improved_without("batch_norm"), nn.BatchNorm2d)
    with pytest.raises(ValueError, match="unknown improvement 'dropout'.*separable"):
        improved_without("dropout")


def test_cumulative_improvements_end_at_the_improved_unet():
    models = cumulative_improvements(base_filters=32)
    assert list(models) == list(IMPROVEMENTS)
    assert models["additive_skips"].hparams == ImprovedUNet().hparams
    assert count_parameters(models["additive_skips"]) == 4_444_323
    assert models["separable"].hparams == UNet(separable=True).hparams


def test_improvement_table_counts_each_change_alone_and_in_turn():
    rows = improvement_table(base_filters=32)
    classic = count_parameters(ClassicUNet())
    assert [row["change"] for row in rows] == list(IMPROVEMENTS)
    assert rows[0]["alone"] == rows[0]["in turn"] == count_parameters(UNet(separable=True))
    assert rows[2]["alone"] == count_parameters(UNet(kernel_size=7))
    assert rows[-1]["in turn"] == count_parameters(ImprovedUNet()) == 4_444_323
    assert all(row["alone vs Classic"] == row["alone"] / classic for row in rows)
    assert all(row["in turn vs Classic"] == row["in turn"] / classic for row in rows)


# --- checkpoints ---------------------------------------------------------------------------

def test_a_checkpoint_keeps_the_batch_norm_statistics_a_model_learnt(tmp_path):
    torch.manual_seed(0)
    model = build_model("improved", base_filters=4).train()
    with torch.no_grad():  # the running means and variances move off their 0 and 1 start
        model(torch.randn(4, 4, 32, 32) * 3 + 1)
    learnt = {name: buffer.clone() for name, buffer in model.named_buffers()}
    assert any(name.endswith("running_mean") and buffer.abs().sum() > 0
               for name, buffer in learnt.items())
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_model(tmp_path / "m.pt")
    assert set(dict(loaded.named_buffers())) == set(learnt)
    for name, buffer in loaded.named_buffers():
        assert torch.equal(buffer, learnt[name]), name
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded(x))


@pytest.mark.parametrize("name", ["classic", "improved", "attention", "custom"])
def test_checkpoint_round_trip_rebuilds_the_model_from_its_hparams(name, tmp_path):
    torch.manual_seed(4)
    model = (build_model("improved", base_filters=4, kernel_size=3) if name == "custom"
             else build_model(name, base_filters=4))
    save_checkpoint(tmp_path / "m.pt", model)
    payload = read_checkpoint(tmp_path / "m.pt")
    assert payload["model_class"] == model.preset_name == name
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded) is UNet and loaded.hparams == model.hparams
    assert loaded.preset_name == name
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded(x))


def test_another_architecture_is_refused_naming_both_presets_and_the_difference(tmp_path):
    save_checkpoint(tmp_path / "last.pt", build_model("classic", base_filters=4))
    payload = read_checkpoint(tmp_path / "last.pt")
    check_same_architecture(build_model("classic", base_filters=4), payload, "last.pt")
    with pytest.raises(CheckpointError, match=r"^last.pt: saved from the classic U-Net, which "
                       r"differs from the model given, the attention U-Net \(attention: False "
                       r"saved, True given\)$"):
        check_same_architecture(build_model("attention", base_filters=4), payload, "last.pt")
    # a setting only the file has (a newer unet_lib's) is named too, not left out
    newer = {**payload, "hparams": {**payload["hparams"], "dropout": 0.1}}
    with pytest.raises(CheckpointError, match=r"classic U-Net \(dropout: 0.1 saved, None "
                                              r"given\)$"):
        check_same_architecture(build_model("classic", base_filters=4), newer, "last.pt")


def test_parameters_by_level_add_up_and_name_the_widths():
    from unet_lib.summary import parameters_by_level

    model = build_model("classic", base_filters=8)
    rows = parameters_by_level(model)
    assert [row["channels"] for row in rows] == [8, 16, 32, 64, 128]
    assert sum(row["parameters"] for row in rows) == count_parameters(model)
    # the bottleneck: two 3×3 convolutions 64 → 128 → 128, with biases
    assert rows[-1]["parameters"] == 64 * 128 * 9 + 128 + 128 * 128 * 9 + 128


def test_a_level_table_runs_the_model_where_it_is_and_leaves_it_in_its_mode():
    from unet_lib.summary import level_table

    model = build_model("improved", base_filters=4).train()  # as fit leaves it
    rows = level_table(model, image_size=32)
    assert rows[0]["shape"] == (4, 32, 32) and model.training  # batch norm back to training
    # "meta" stands in for a GPU: the input is made where the weights are
    on_meta = build_model("classic", base_filters=4).to("meta")
    assert [row["shape"] for row in level_table(on_meta, image_size=32)] == [
        row["shape"] for row in level_table(build_model("classic", base_filters=4), 32)]
    # and of their type: a model in float64 (or bfloat16) is fed its own kind of numbers
    double = build_model("attention", base_filters=4).double()
    assert [row["shape"] for row in level_table(double, image_size=32)] == [
        row["shape"] for row in level_table(build_model("attention", base_filters=4), 32)]


def test_measuring_the_signal_leaves_a_batch_norm_model_as_it_was():
    from unet_lib.summary import signal_by_level

    model = build_model("improved", base_filters=4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = signal_by_level(model, torch.randn(2, 4, 32, 32))
    assert [row["level"] for row in rows] == list(range(model.depth + 1))
    assert model.training  # its mode, and its running statistics, as they were
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_convolutions_start_as_in_the_unet_paper_gaussian_with_std_sqrt_2_over_fan_in():
    torch.manual_seed(0)
    model = ClassicUNet(base_filters=32)
    # the second convolution of the 64-wide level: 64 inputs × 3 × 3 = 576 per unit
    conv = model.encoder[1][1][0]
    assert tuple(conv.weight.shape) == (64, 64, 3, 3)
    expected = (2 / 576) ** 0.5  # 0.0589; PyTorch's own default would give 0.0241
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.02)
    assert conv.weight.mean().item() == pytest.approx(0, abs=0.003)
    assert torch.all(conv.bias == 0)
    # the head still starts every channel at the tumour prior, 1 %
    assert torch.allclose(torch.sigmoid(model.head.bias), torch.full((3,), 0.01))


def test_models_with_batch_norm_keep_pytorchs_default_start():
    torch.manual_seed(0)
    model = ImprovedUNet(base_filters=32)
    # the 7×7 depthwise convolution of the 128-wide level: 49 inputs per unit; PyTorch's
    # default is uniform in ±1/√49, std 1/√(3·49) = 0.0825 (He's would be √(2/49) = 0.202)
    depthwise = model.encoder[2].residual[0]
    assert tuple(depthwise.weight.shape) == (128, 1, 7, 7)
    assert depthwise.weight.std().item() == pytest.approx((1 / 147) ** 0.5, rel=0.03)
    assert depthwise.weight.abs().max().item() <= 1 / 7
    assert torch.allclose(torch.sigmoid(model.head.bias), torch.full((3,), 0.01))


def test_the_he_start_keeps_the_signal_through_a_classic_unet_without_batch_norm():
    # Through 10 convolution + ReLU layers down to the bottleneck, He's start keeps the
    # features' mean square within a small factor of the input's; PyTorch's default start
    # (a third of the variance per layer) shrinks it to 9e-5 of the input's.
    torch.manual_seed(0)
    model = ClassicUNet(base_filters=16)
    x = torch.randn(2, 4, 64, 64)
    features = x
    with torch.no_grad():
        for level, block in enumerate(model.encoder):
            features = block(model.pool(features) if level else features)
    ratio = features.pow(2).mean().item() / x.pow(2).mean().item()
    assert 0.05 < ratio < 20
    # chapter 1's table says the same: the last row is the bottleneck's ratio
    rows = signal_by_level(model, x)
    assert [row["stage"] for row in rows] == [f"encoder {l}" for l in range(4)] + ["bottleneck"]
    assert rows[-1]["mean square"] == pytest.approx(ratio)
