"""The three U-Nets: shapes, parameter counts, the five improvements, attention gates."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from unet_lib.models import (IMPROVEMENTS, AttentionGate, AttentionUNet, ClassicUNet,
                             ImprovedUNet, SeparableConv2d, UNet, build_model, count_parameters)


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
    assert [first_conv(b).in_channels for b in concat.decoder] == [512, 256, 128, 64]
    assert [first_conv(b).in_channels for b in additive.decoder] == [256, 128, 64, 32]


def test_all_five_switches_together_are_the_improved_unet():
    together = {k: v for change in IMPROVEMENTS.values() for k, v in change.items()}
    assert UNet(**together).hparams == ImprovedUNet().hparams
    assert count_parameters(UNet(**together)) == count_parameters(ImprovedUNet())


@pytest.mark.parametrize("change", list(IMPROVEMENTS))
def test_each_improvement_alone_trains_one_step(change):
    model = UNet(base_filters=4, **IMPROVEMENTS[change])
    x, y = torch.randn(2, 4, 32, 32), (torch.rand(2, 3, 32, 32) > 0.9).float()
    loss = F.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


# --- attention ---------------------------------------------------------------------------

def test_attention_maps_one_per_gate_deepest_first_in_0_1():
    model = AttentionUNet(base_filters=4).eval()
    with torch.no_grad():
        logits, maps = model(torch.randn(3, 4, 50, 37), return_attention=True)
    assert logits.shape == (3, 3, 50, 37)
    assert [tuple(m.shape) for m in maps] == [(3, 1, 7, 5), (3, 1, 13, 10), (3, 1, 25, 19),
                                              (3, 1, 50, 37)]
    assert all(float(m.min()) >= 0 and float(m.max()) <= 1 for m in maps)


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


def test_return_attention_on_a_model_without_gates_is_a_clear_error():
    with pytest.raises(ValueError, match="attention gates"):
        ClassicUNet(base_filters=4)(torch.zeros(1, 4, 32, 32), return_attention=True)


def test_attention_gates_are_the_only_difference_from_classic():
    classic, attention = ClassicUNet(), AttentionUNet()
    gates = sum(count_parameters(g) for g in attention.gates)
    assert count_parameters(attention) == count_parameters(classic) + gates
    # W_x (no bias), W_g and psi (with bias) per gate at half the skip width
    by_hand = sum(s * (s // 2) + s * (s // 2) + s // 2 + s // 2 + 1 for s in (256, 128, 64, 32))
    assert gates == by_hand
