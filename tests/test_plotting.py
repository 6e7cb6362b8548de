"""course_lib.plotting: the figures the chapters draw have the panels, labels and checks they promise."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib.plotting import plot_curves, plot_history, show_images  # noqa: E402
from course_lib.training import History  # noqa: E402


def test_plot_curves_draws_one_labelled_line_per_curve():
    ax = plot_curves([1, 2, 3], {"a": [0.1, 0.2, 0.3], "b": [3, 2, 1]}, "epoch", "loss", logx=True)
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss" and ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="curve 'a' has 2 values but x has 3"):
        plot_curves([1, 2, 3], {"a": [1, 2]}, "x", "y")


def test_plot_history_shows_accuracy_in_percent_only_when_recorded():
    fig = plot_history(History(loss=[1.0, 0.5], val_accuracy=[0.9, 0.95]), "run")
    assert list(fig.axes[1].get_lines()[0].get_ydata()) == [90.0, 95.0]
    assert not plot_history(History(loss=[1.0])).axes[1].axison
    with pytest.raises(TypeError, match="history must be"):
        plot_history({"loss": [1.0]})


def test_show_images_grid_and_errors():
    fig = show_images(torch.rand(12, 1, 8, 8), [str(i) for i in range(12)], cols=5, title="digits")
    assert len(fig.axes) == 15 and fig.axes[11].get_title() == "11" and fig.get_suptitle() == "digits"
    with pytest.raises(ValueError, match="shape"):
        show_images(torch.rand(2, 2, 8, 8))
    with pytest.raises(TypeError, match="images must be a tensor"):
        show_images([[0.0]])
