"""The coding exercises' checks: an open skeleton is 'not answered yet', a right answer passes,
and a wrong one fails with a message that says what differs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from unet_course import exercises
from unet_course.checking import NotYet


def skeleton(*args):
    ...


def each_mistake_gets_its_hint(check, written, mistakes: dict) -> None:
    """``check`` of ``written`` with each mistake's keywords fails with its hint (a pattern)."""
    for hint, mistake in mistakes.items():
        with pytest.raises(NotYet, match=hint):
            check(lambda *args, mistake=mistake: written(*args, **mistake))


def test_open_skeletons_are_not_answered_yet_and_do_not_fail(capsys):
    exercises.check_double_conv(skeleton)
    exercises.check_separable_conv(skeleton)
    exercises.check_gate_forward(skeleton)
    exercises.check_scores(skeleton)
    assert capsys.readouterr().out.count("Not answered yet") == 4


def double_conv(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU())


def test_a_right_double_convolution_passes_and_wrong_ones_say_why(capsys):
    exercises.check_double_conv(double_conv)
    assert "Right" in capsys.readouterr().out
    with pytest.raises(NotYet, match="too few"):  # one convolution only
        exercises.check_double_conv(lambda i, o: nn.Sequential(nn.Conv2d(i, o, 3, padding=1)))
    with pytest.raises(NotYet, match="shape"):  # no padding: the image shrinks
        exercises.check_double_conv(lambda i, o: nn.Sequential(
            nn.Conv2d(i, o, 3), nn.ReLU(), nn.Conv2d(o, o, 3), nn.ReLU()))
    with pytest.raises(NotYet, match="negative values.*ends with a ReLU"):  # the last missing
        exercises.check_double_conv(lambda i, o: nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.Conv2d(o, o, 3, padding=1)))


def test_separable_convolution_check():
    def right(c_in, c_out, k):
        return nn.Sequential(nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in, bias=False),
                             nn.Conv2d(c_in, c_out, 1))

    exercises.check_separable_conv(right)
    with pytest.raises(NotYet, match="too many"):  # a full k×k convolution
        exercises.check_separable_conv(lambda i, o, k: nn.Conv2d(i, o, k, padding=k // 2))


def test_gate_forward_check():
    exercises.check_gate_forward(exercises.gate_forward_solution)

    def without_resize(x, g, w_x, w_g, psi):
        return torch.sigmoid(psi(F.relu(w_x(x) + F.interpolate(w_g(g), scale_factor=2,
                                                                 mode="nearest"))))

    with pytest.raises(NotYet, match="different values"):
        exercises.check_gate_forward(without_resize)


def test_scores_check_explains_without_giving_the_answer():
    def right(tp, fp, fn):
        return (2 * tp / (2 * tp + fp + fn), tp / (tp + fp) if tp + fp else 0.0,
                tp / (tp + fn) if tp + fn else 0.0)

    exercises.check_scores(right)
    with pytest.raises(NotYet) as error:
        exercises.check_scores(lambda tp, fp, fn: (tp / (tp + fp + fn),  # Jaccard, not Dice
                                                   tp / (tp + fp) if tp + fp else 0.0,
                                                   tp / (tp + fn) if tp + fn else 0.0))
    assert "your Dice" in str(error.value) and "which is not it" in str(error.value)


def test_scores_that_divide_by_zero_are_told_which_counts_did_it():
    with pytest.raises(NotYet, match=r"scores\(0, 0, 5\) divides by zero.*nothing was predicted"):
        exercises.check_scores(lambda tp, fp, fn: (2 * tp / (2 * tp + fp + fn), tp / (tp + fp),
                                                   tp / (tp + fn)))


def test_a_nan_score_for_an_empty_prediction_is_not_taken_for_zero():
    def in_numpy(tp, fp, fn):  # 0/0 in NumPy is NaN with a warning, not an error
        tp, fp, fn = np.float64(tp), np.float64(fp), np.float64(fn)
        with np.errstate(invalid="ignore"):
            return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp), tp / (tp + fn)

    with pytest.raises(NotYet, match=r"your precision for TP=0, FP=0, FN=5 is nan"):
        exercises.check_scores(in_numpy)


def test_a_layer_that_acts_only_in_training_is_caught_in_training_mode():
    with pytest.raises(NotYet, match="in training mode"):  # same output in eval(): passed
        exercises.check_double_conv(lambda i, o: nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.5),
            nn.Conv2d(o, o, 3, padding=1), nn.ReLU()))
    with pytest.raises(NotYet, match="in training mode"):
        exercises.check_separable_conv(lambda i, o, k: nn.Sequential(
            nn.Conv2d(i, i, k, padding=k // 2, groups=i, bias=False),
            nn.BatchNorm2d(i, affine=False), nn.Conv2d(i, o, 1)))


class PointwiseMadeFirst(nn.Module):
    """Right, with its layers created in another order and the 1×1 part an nn.Linear."""

    def __init__(self, c_in, c_out, k):
        super().__init__()
        self.pointwise = nn.Linear(c_in, c_out)
        self.depthwise = nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def test_a_right_separable_convolution_written_otherwise_passes_and_hints_fit_the_mistake(
        capsys):
    exercises.check_separable_conv(PointwiseMadeFirst)  # was: "create them in the order…"
    assert "Right" in capsys.readouterr().out
    with pytest.raises(NotYet, match="a full convolution") as error:  # groups forgotten
        exercises.check_separable_conv(lambda i, o, k: nn.Sequential(
            nn.Conv2d(i, i, k, padding=k // 2, bias=False), nn.Conv2d(i, o, 1)))
    assert "nn.Conv2d" not in str(error.value)  # a hint, not the solution's code
    with pytest.raises(NotYet, match="no bias"):
        exercises.check_separable_conv(lambda i, o, k: nn.Sequential(
            nn.Conv2d(i, i, k, padding=k // 2, groups=i), nn.Conv2d(i, o, 1)))


class OneConvolutionPerChannel(nn.Module):
    """The depthwise part as a list of single-channel convolutions: right, and C times slower."""

    def __init__(self, c_in, c_out, k):
        super().__init__()
        self.per_channel = nn.ModuleList(nn.Conv2d(1, 1, k, padding=k // 2, bias=False)
                                         for _ in range(c_in))
        self.pointwise = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        return self.pointwise(torch.cat([conv(x[:, c:c + 1])
                                         for c, conv in enumerate(self.per_channel)], dim=1))


def test_a_depthwise_part_written_one_convolution_per_channel_is_told_about_groups():
    with pytest.raises(NotYet, match=r"6 × \(1, 1, 7, 7\).*your 6 single-channel "
                       r"convolutions compute the depthwise part.*groups.*\(6, 1, 7, 7\)"
                       ) as error:
        exercises.check_separable_conv(OneConvolutionPerChannel)
    assert "nn.Conv2d" not in str(error.value)  # a hint, not the solution's code


def test_a_gate_that_doubles_g_instead_of_matching_x_fails_where_sizes_are_odd():
    def doubled(x, g, w_x, w_g, psi):  # right on 16 and 8; 13 doubled is not 25
        gating = F.interpolate(w_g(g), scale_factor=2, mode="bilinear", align_corners=False)
        return torch.sigmoid(psi(F.relu(w_x(x) + gating)))

    with pytest.raises(NotYet, match="x 25×25 and g 13×13.*bring it to x's own height"):
        exercises.check_gate_forward(doubled)

    def not_resized(x, g, w_x, w_g, psi):  # was: a raw RuntimeError
        return torch.sigmoid(psi(F.relu(w_x(x) + w_g(g))))

    with pytest.raises(NotYet, match="coarser than x"):
        exercises.check_gate_forward(not_resized)


def test_scores_get_the_hint_their_mistake_needs(capsys):
    def right(tp, fp, fn):
        return (2 * tp / (2 * tp + fp + fn), tp / (tp + fp) if tp + fp else 0.0,
                tp / (tp + fn) if tp + fn else 0.0)

    exercises.check_scores(lambda *counts: np.array(right(*counts)))  # an array of three
    exercises.check_scores(lambda *counts: torch.tensor(right(*counts)))
    assert capsys.readouterr().out.count("Right") == 2
    with pytest.raises(NotYet, match="its denominator is 0 here.*not NaN or 1"):
        exercises.check_scores(lambda tp, fp, fn: (2 * tp / (2 * tp + fp + fn),
                                                   tp / (tp + fp) if tp + fp else 1.0,
                                                   tp / (tp + fn) if tp + fn else 1.0))
    with pytest.raises(NotYet, match="rounded: return it unrounded"):
        exercises.check_scores(lambda *counts: tuple(round(v, 4) for v in right(*counts)))
    with pytest.raises(NotYet, match="a str: return numbers"):  # float("0.5") passed before
        exercises.check_scores(lambda *counts: tuple(str(v) for v in right(*counts)))
    with pytest.raises(NotYet, match="raised NotImplementedError"):  # a ModuleList
        exercises.check_double_conv(lambda i, o: nn.ModuleList([nn.Conv2d(i, o, 3, padding=1),
                                                                nn.ReLU(),
                                                                nn.Conv2d(o, o, 3, padding=1),
                                                                nn.ReLU()]))


class SecondLayerMadeFirst(nn.Module):
    """A right double convolution whose second layer is created first: both biases are (C,)."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))))


def test_layers_are_matched_in_the_order_they_run_not_the_order_they_were_made(capsys):
    exercises.check_double_conv(SecondLayerMadeFirst)  # the two biases paired by running order
    assert "Right" in capsys.readouterr().out
    module = SecondLayerMadeFirst(4, 8).eval()
    exercises.check_double_conv(lambda i, o: module if (i, o) == (4, 8)
                                else SecondLayerMadeFirst(i, o).eval())
    assert not module.training  # the check leaves the student's module as it found it


def test_a_module_that_ignores_its_arguments_fails_on_the_second_set():
    with pytest.raises(NotYet, match=r"double convolution for \(3, 5\)"):
        exercises.check_double_conv(lambda i, o: double_conv(4, 8))  # channels written in
    with pytest.raises(NotYet, match=r"separable convolution for \(4, 5, 3\)"):
        exercises.check_separable_conv(lambda i, o, k: nn.Sequential(  # a 7×7 written in
            nn.Conv2d(i, i, 7, padding=3, groups=i, bias=False), nn.Conv2d(i, o, 1)))
    with pytest.raises(NotYet, match="batch norm belongs to the Improved U-Net"):
        exercises.check_double_conv(lambda i, o: nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
            nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()))


def largest_by_faces(mask):
    """Exercise 7.3's solution, as the book's folded cell writes it."""
    from scipy import ndimage

    pieces, count = ndimage.label(mask)
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    return pieces == 1 + np.argmax(np.bincount(pieces.ravel())[1:])


def by_corners_too(mask):
    from scipy import ndimage

    pieces, count = ndimage.label(mask, np.ones((3, 3, 3)))
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    return pieces == 1 + np.argmax(np.bincount(pieces.ravel())[1:])


def ndimage_label(mask):
    from scipy import ndimage

    return ndimage.label(mask)[0]


def first_piece(mask):
    from scipy import ndimage

    return ndimage.label(mask)[0] == 1  # the first piece met, whatever its size


def test_keeping_the_largest_piece_is_checked_with_a_hint_for_each_way_to_miss_it(capsys):
    exercises.check_keep_largest(skeleton)
    assert "Not answered yet" in capsys.readouterr().out
    exercises.check_keep_largest(largest_by_faces)
    assert capsys.readouterr().out.startswith("Right")
    exercises.check_keep_largest(lambda mask: largest_by_faces(mask).astype(np.uint8))  # 0/1 too
    wrong = {"keeps more than the largest face-connected piece": lambda mask: mask.copy(),
             "touch only at an edge or a corner": by_corners_too,
             "it is empty": lambda mask: np.zeros_like(mask),
             "not the largest": first_piece,
             "changed the mask it was given": lambda mask: np.logical_and(
                 mask, largest_by_faces(mask), out=mask),
             "returned shape": lambda mask: largest_by_faces(mask)[0],
             "it is the background": lambda mask: ~mask,
             "largest piece of each slice": lambda mask: np.stack(
                 [largest_by_faces(piece) for piece in mask]),
             "no pieces .* return an empty mask": lambda mask: first_piece(mask) if mask.any()
             else np.argmax([]),
             # None for the empty mask, after a value for the cube: a missing return there
             "an empty mask returned None.*a return is missing.*return an empty mask":
             lambda mask: largest_by_faces(mask) if mask.any() else None,
             # the largest piece's label from counts[1:].argmax(), without the + 1
             "index \\+ 1|argmax \\+ 1": lambda mask: ndimage_label(mask) == np.argmax(
                 np.bincount(ndimage_label(mask).ravel())[1:]),
             "raised ZeroDivisionError": lambda mask: 1 / 0,
             # the labels kept where the largest piece is: its label number, not True
             r"values other than 0 and 1 \(dtype int[0-9]+, e.g. [0-9]+\).*labels == k":
             lambda mask: np.where(largest_by_faces(mask), ndimage_label(mask), 0)}
    for hint, answer in wrong.items():
        with pytest.raises(NotYet, match=hint):
            exercises.check_keep_largest(answer)


def forward_written(x, encoder, pool, ups, decoder_blocks, head, *, pool_first=False,
                    add=False, skip_order=-1, with_head=True, skip_first=True):
    """A student's U-Net forward pass, right by default; each keyword makes one mistake."""
    skips = []
    for level, block in enumerate(encoder):
        if level > 0 or pool_first:
            x = pool(x)
        x = block(x)
        skips.append(x)
    x = skips.pop()
    for up, block in zip(ups, decoder_blocks):
        skip = skips.pop(skip_order)
        x = up(x)
        merged = x + skip if add else torch.cat([skip, x] if skip_first else [x, skip], dim=1)
        x = block(merged)
    return head(x) if with_head else x


def test_a_unet_forward_pass_is_checked_at_two_depths_with_a_hint_for_each_way_to_miss(capsys):
    exercises.check_unet_forward(skeleton)
    assert "Not answered yet" in capsys.readouterr().out
    exercises.check_unet_forward(lambda *args: None)  # filled in, without a return
    assert "a return is missing" in capsys.readouterr().out
    exercises.check_unet_forward(forward_written)
    assert capsys.readouterr().out.startswith("Right")

    def four_levels(x, encoder, pool, ups, decoder_blocks, head):
        skips = []
        for level in range(5):  # the course's depth, written in
            x = encoder[level](x if level == 0 else pool(x))
            skips.append(x)
        x = skips.pop()
        for level in range(4):
            x = decoder_blocks[level](torch.cat([skips.pop(), ups[level](x)], dim=1))
        return head(x)

    wrong = {"puts the skip first": dict(skip_first=False),
             "concatenate them along the channels": dict(add=True),
             "reverse order": dict(skip_order=0),
             "head .* comes last": dict(with_head=False),
             "every pool going down is undone": dict(pool_first=True)}
    each_mistake_gets_its_hint(exercises.check_unet_forward, forward_written, wrong)
    with pytest.raises(NotYet, match="depth 2 .*IndexError.*rather than over a fixed depth"):
        exercises.check_unet_forward(four_levels)
    with pytest.raises(NotYet, match="should return a tensor"):
        exercises.check_unet_forward(lambda *args: forward_written(*args).tolist())


def train_step_written(model, images, masks, optimizer, loss_fn, *, clear=True, backward=True,
                       step=True, give=lambda loss: loss.item(), clear_late=False):
    """A student's training step, right by default; each keyword makes one mistake."""
    if clear:
        optimizer.zero_grad()
    loss = loss_fn(model(images), masks)
    if backward:
        loss.backward()
    if clear_late:
        optimizer.zero_grad()
    if step:
        optimizer.step()
    return give(loss)


def test_a_training_step_is_checked_over_three_steps_with_a_hint_for_each_way_to_miss(capsys):
    exercises.check_train_step(skeleton)
    assert "Not answered yet" in capsys.readouterr().out
    exercises.check_train_step(train_step_written)
    assert capsys.readouterr().out.startswith("Right")
    with pytest.raises(NotYet, match="returned a tensor.*loss.item"):
        exercises.check_train_step(lambda *args: train_step_written(*args, give=lambda loss: loss))

    def in_evaluation_mode(model, *args):
        model.eval()
        return train_step_written(model, *args)

    def in_training_mode(model, *args):  # a step that says so itself is right too
        model.train()
        return train_step_written(model, *args)

    with pytest.raises(NotYet, match="left the model in evaluation mode"):
        exercises.check_train_step(in_evaluation_mode)
    exercises.check_train_step(in_training_mode)
    exercises.check_train_step(lambda model, images, masks, optimizer, loss_fn: float(
        train_step_written(model, images, masks, optimizer, loss_fn)))

    def loss_after_the_step(model, images, masks, optimizer, loss_fn):
        train_step_written(model, images, masks, optimizer, loss_fn)
        with torch.no_grad():
            return loss_fn(model(images), masks).item()

    wrong = {"clear them .optimizer.zero_grad..": dict(clear=False),
             "left the weights as they were.*after loss.backward": dict(backward=False),
             "left the weights as they were": dict(step=False),
             "not between it and the step": dict(clear_late=True),
             "returned None.*return the batch's loss": dict(give=lambda loss: None),
             "not the batch's loss": dict(give=lambda loss: 2 * loss.item())}
    each_mistake_gets_its_hint(exercises.check_train_step, train_step_written, wrong)
    with pytest.raises(NotYet, match="not the batch's loss"):
        exercises.check_train_step(loss_after_the_step)

    def item_first(model, images, masks, optimizer, loss_fn):
        optimizer.zero_grad()
        loss = loss_fn(model(images), masks).item()
        loss.backward()

    with pytest.raises(NotYet, match="raised AttributeError.*call backward"):
        exercises.check_train_step(item_first)


def test_the_new_checks_name_a_sigmoid_too_many_the_order_of_the_lists_and_a_new_optimizer():
    def with_sigmoid(*args):
        return torch.sigmoid(forward_written(*args))

    def top_first(x, encoder, pool, ups, decoder_blocks, head):
        return forward_written(x, encoder, pool, ups[::-1], decoder_blocks[::-1], head)

    with pytest.raises(NotYet, match="return the head's output as it is"):
        exercises.check_unet_forward(with_sigmoid)
    with pytest.raises(NotYet, match="in the order given, deepest first"):
        exercises.check_unet_forward(top_first)

    def squashed(model, images, masks, optimizer, loss_fn):
        optimizer.zero_grad()
        loss = loss_fn(torch.sigmoid(model(images)), masks)
        loss.backward()
        optimizer.step()
        return loss.item()

    def own_optimizer(model, images, masks, optimizer, loss_fn):
        mine = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
        return train_step_written(model, images, masks, mine, loss_fn)

    with pytest.raises(NotYet, match="BCE .with logits. applies the sigmoid itself"):
        exercises.check_train_step(squashed)
    with pytest.raises(NotYet, match="use the optimizer you are given"):
        exercises.check_train_step(own_optimizer)


def test_none_after_a_value_is_a_missing_return_not_an_open_skeleton():
    def scores(tp, fp, fn):  # forgets to return when a denominator is 0
        if tp + fp == 0 or tp + fn == 0:
            return
        return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp), tp / (tp + fn)

    with pytest.raises(NotYet, match=r"scores\(0, 0, 5\) returned None.*a return is missing"
                                     r".*denominator is 0 is 0"):
        exercises.check_scores(scores)


def test_a_step_that_computes_gradients_but_neither_steps_nor_returns_is_told_so(capsys):
    def half_a_step(model, images, masks, optimizer, loss_fn):
        optimizer.zero_grad()
        loss_fn(model(images), masks).backward()  # no step, no return

    with pytest.raises(NotYet, match=r"moved no weight.*optimizer\.step\(\)"):
        exercises.check_train_step(half_a_step)
    assert "Not answered yet" not in capsys.readouterr().out


def test_in_jupyter_a_check_shows_its_hint_without_the_checks_own_traceback():
    error = NotYet("Not yet: your answer is too high. Hint: count again.")
    assert error._render_traceback_() == ["NotYet: Not yet: your answer is too high. Hint: "
                                          "count again."]


def going_down(x, encoder, pool) -> list:
    """Every encoder level's output, top first, as a right forward pass keeps them."""
    skips = []
    for level, block in enumerate(encoder):
        x = block(x if level == 0 else pool(x))
        skips.append(x)
    return skips


def test_a_forward_that_stops_short_or_skips_the_up_convolutions_is_told_which():
    def one_level_short(x, encoder, pool, ups, decoder_blocks, head):
        skips = going_down(x, encoder, pool)
        x = skips.pop()
        for i in range(len(ups) - 1):  # the last step up left out
            x = decoder_blocks[i](torch.cat([skips.pop(), ups[i](x)], dim=1))
        return head(x)

    def interpolated(x, encoder, pool, ups, decoder_blocks, head):
        skips = going_down(x, encoder, pool)
        x = skips.pop()
        for block in decoder_blocks:  # resized, not up-convolved: twice the channels
            x = block(torch.cat([skips.pop(), F.interpolate(x, scale_factor=2)], dim=1))
        return head(x)

    with pytest.raises(NotYet, match="the head got features of another level"):
        exercises.check_unet_forward(one_level_short)
    with pytest.raises(NotYet, match="up-sample with the given ups"):
        exercises.check_unet_forward(interpolated)


def test_a_forward_that_cuts_the_gradients_gives_the_right_logits_and_still_fails():
    from unet_course.exercises.forward import forward_with_parts

    def without_gradients(*args):
        with torch.no_grad():
            return forward_with_parts(*args)

    def detached_skips(x, encoder, pool, ups, decoder_blocks, head):
        skips = []
        for level, block in enumerate(encoder):
            x = block(x if level == 0 else pool(x))
            skips.append(x.detach())  # the skips cut off from the encoder's weights
        x = skips.pop()
        for up, block in zip(ups, decoder_blocks):
            x = block(torch.cat([skips.pop(), up(x)], dim=1))
        return head(x)

    for answer in (without_gradients, detached_skips):
        with pytest.raises(NotYet, match="right logits, but training could not learn"):
            exercises.check_unet_forward(answer)


def test_the_usual_slips_of_the_gate_the_block_and_the_scores_are_named():
    from unet_course.exercises import gate_forward_solution

    def concatenated(x, g, w_x, w_g, psi):
        gating = F.interpolate(w_g(g), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(psi(F.relu(torch.cat([w_x(x), gating], dim=1))))

    slips = {"add the two projections": concatenated,
             "outside \\[0, 1\\]": lambda x, g, w_x, w_g, psi: torch.logit(
                 gate_forward_solution(x, g, w_x, w_g, psi)),  # no sigmoid at the end
             "through a sigmoid once more": lambda *args: torch.sigmoid(
                 gate_forward_solution(*args)),
             "return α itself": lambda x, *args: x * gate_forward_solution(x, *args)}
    for hint, answer in slips.items():
        with pytest.raises(NotYet, match=hint):
            exercises.check_gate_forward(answer)

    def right(tp, fp, fn):
        return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp), tp / (tp + fn)

    with pytest.raises(NotYet, match="right ones in another order"):
        exercises.check_scores(lambda *counts: tuple(reversed(right(*counts))))
    with pytest.raises(NotYet, match="divide with /, not //"):
        exercises.check_scores(lambda tp, fp, fn: (2 * tp // (2 * tp + fp + fn),
                                                   tp // (tp + fp), tp // (tp + fn)))


def test_a_step_that_runs_the_model_twice_moves_batch_norms_averages_twice_and_is_told():
    def twice(model, images, masks, optimizer, loss_fn):
        model(images)  # a look at the output first: batch norm's averages move once more
        return train_step_written(model, images, masks, optimizer, loss_fn)

    with pytest.raises(NotYet, match="running statistics.*run the model once per step"):
        exercises.check_train_step(twice)


def test_a_gate_that_joins_g_unresized_by_concatenation_gets_the_size_hint():
    def joined_unresized(x, g, w_x, w_g, psi):  # torch.cat's own message for the sizes
        return torch.sigmoid(psi(F.relu(torch.cat([w_x(x), w_g(g)], dim=1))))

    with pytest.raises(NotYet, match="coarser than x"):
        exercises.check_gate_forward(joined_unresized)


def test_a_check_leaves_the_notebook_s_random_numbers_as_they_were(capsys):
    # a check seeds and draws (its random inputs, models built only to be counted): a
    # student's next torch.rand / np.random / random draw was another number after it ran
    import random

    import numpy as np

    from unet_course import labs

    def draws():
        return (torch.rand(2).tolist(), np.random.rand(2).tolist(), random.random())

    checks = [lambda: exercises.check_double_conv(double_conv),
              lambda: exercises.check_gate_forward(exercises.gate_forward_solution),
              lambda: exercises.check_scores(skeleton),
              lambda: labs.check_attention_parameters(None, inter_channels=8),
              lambda: labs.check_gate_sizes(None, image_size=64),
              lambda: labs.check_biggest_growth(None),
              lambda: pytest.raises(NotYet, exercises.check_double_conv,  # a wrong answer
                                    lambda i, o: nn.Conv2d(i, o, 3, padding=1))]
    for check in checks:
        torch.manual_seed(123), np.random.seed(123), random.seed(123)
        expected = draws()
        torch.manual_seed(123), np.random.seed(123), random.seed(123)
        check()
        assert draws() == expected


def test_a_level_without_biases_or_with_batch_norm_is_told_about_its_biases():
    """Exercise 1.4: 2·C_out parameters too few (no biases) or too many (batch norm on
    bias-free convolutions, the usual way to write it) each get their own hint; 4·C_out more
    (batch norm beside the biases) keeps its own."""
    def level(i, o, bias=True, norm=False):
        layers = []
        for c_in in (i, o):
            layers += [nn.Conv2d(c_in, o, 3, padding=1, bias=bias),
                       *([nn.BatchNorm2d(o)] if norm else []), nn.ReLU()]
        return nn.Sequential(*layers)

    with pytest.raises(NotYet, match=r"16 parameters too few.*each convolution has a bias"):
        exercises.check_double_conv(lambda i, o: level(i, o, bias=False))
    with pytest.raises(NotYet, match=r"16 parameters too many.*batch norm belongs to the Impr"):
        exercises.check_double_conv(lambda i, o: level(i, o, bias=False, norm=True))
    with pytest.raises(NotYet, match=r"32 parameters too many.*batch norm belongs to the Impr"):
        exercises.check_double_conv(lambda i, o: level(i, o, norm=True))


def test_a_dice_made_of_precision_and_recall_is_told_what_no_overlap_does_to_it():
    """Chapter 6 writes Dice = 2PR / (P + R): with TP = 0 and FP, FN > 0 both are 0, and the
    hint must not say that nothing was predicted or that there was nothing to find."""
    def from_p_and_r(tp, fp, fn):
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return 2 * p * r / (p + r), p, r

    with pytest.raises(NotYet, match=r"scores\(0, 3, 4\) divides by zero.*nothing overlaps, "
                                     r"so precision and recall are both 0") as raised:
        exercises.check_scores(from_p_and_r)
    assert "nothing was predicted" not in str(raised.value)
