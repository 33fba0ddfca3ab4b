"""README.md shows what the script prints: every output block, every number quoted
from one, and the optimizer recipe, run as written. Times (lines with "took" or
"ms per epoch") are compared with their numbers masked, and the Performance
section, whose numbers are labelled measurements, is left out."""

import contextlib
import inspect
import io
import os
import re
import runpy
import shlex

import pytest
from conftest import ROOT
from test_options import run_main

import main

with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme_file:
    README = readme_file.read()

# A command in backticks, a colon ending its paragraph, then the output block.
OUTPUT_BLOCK = re.compile(
    r"`python (main\.py[^`]*)`[^`]*?:\n\n```text\n(.*?)```", re.DOTALL
)
BLOCKS = OUTPUT_BLOCK.findall(README)
CODE_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
TIMING = re.compile(r"took|ms per epoch")


def comparable(line):
    """The line as compared: trailing spaces dropped, timing numbers masked."""
    line = line.rstrip()
    return re.sub(r"\d+\.\d+", "N", line) if TIMING.search(line) else line


def shown_in(expected, printed):
    """True if the expected lines appear in the printed ones, in order, "..."
    standing for any number of lines and every other line matching exactly."""
    position = 0
    for part in "\n".join(expected).split("..."):
        lines = [line for line in part.strip("\n").split("\n") if line != ""]
        window = len(lines)
        while position + window <= len(printed):
            if printed[position : position + window] == lines:
                break
            position += 1
        else:
            return False
        position += window
    return True


def output_of(capsys, command):
    """(exit status, stdout then stderr as lines) of `python main.py ARGS`."""
    status, out, err = run_main(capsys, *shlex.split(command)[1:])
    return status, [comparable(line) for line in (out + err).split("\n") if line]


def test_readme_has_the_output_blocks_this_test_expects():
    assert len(BLOCKS) >= 6
    assert BLOCKS[0][0] == "main.py" and "..." not in BLOCKS[0][1]


@pytest.mark.parametrize("command, block", BLOCKS, ids=[c for c, _ in BLOCKS])
def test_each_output_block_is_what_the_command_prints(capsys, command, block):
    _, printed = output_of(capsys, command)
    expected = [comparable(line) for line in block.split("\n")]
    assert shown_in(expected, printed), "\n".join(printed)


def test_every_number_quoted_in_the_prose_comes_from_an_output_block():
    """So that editing a quoted number without the output breaks this test."""
    prose = re.sub(r"```.*?```", "", README.split("## Performance")[0], flags=re.DOTALL)
    prose += README.split("## Tests")[1]
    blocks = "\n".join(block for _, block in BLOCKS)
    blocks += " 0.016"  # the Mini-batches limit: test_verdicts.py computes it
    for number in re.findall(r"(?<![\w.])\d+\.\d{3,}(?![\w.])", prose):
        assert number in blocks, number


def test_the_sample_timing_lines_add_up():
    """The default block's times are masked above, so check that they come from
    one run: the total is epoch 1 plus the 99 later epochs, to the printed digits."""
    total, first, each = map(float, re.findall(r"\d+\.\d+", BLOCKS[0][1])[-3:])
    assert "Training took" in BLOCKS[0][1]
    assert total == pytest.approx(first + 99 * each / 1000, abs=0.0015)


def test_the_step_shown_at_the_top_is_train_steps_code_as_written():
    """The README's first code block, line for line, is the heart of train_step
    (its comments left out)."""
    step = CODE_BLOCKS[0].strip("\n").split("\n")
    source = inspect.getsource(main.train_step).split("\n")
    code = [line[4:] for line in source if not line.strip().startswith("#")]
    start = code.index(step[0])
    assert code[start : start + len(step)] == step
    assert "with tf.GradientTape() as tape:" in step[0] and "assign_sub" in step[-1]


def test_the_optimizer_recipe_runs_as_written_and_pairs_each_gradient(
    default_data, tmp_path
):
    """The FAQ's code, run as written, takes train_step's first step."""
    recipe = CODE_BLOCKS[1]
    (tmp_path / "recipe.py").write_text(recipe)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        runpy.run_path(str(tmp_path / "recipe.py"))
    model = main.LinearModel(*main.INITIAL)
    main.train_step(model, *(main.tf.constant(a) for a in default_data), 0.1)
    expected = f"W={float(model.w):.5f}, b={float(model.b):.5f}"
    assert printed.getvalue().strip() == expected
    assert f"# {expected}" in recipe
