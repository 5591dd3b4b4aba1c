"""radn_cli.evaluation.stats against scipy.stats (the oracle), and the scatter plot as a smoke test."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from PIL import Image
from scipy import stats as sps

from radn_cli.evaluation.plot import scatter_plot
from radn_cli.evaluation.stats import (
    correlation_report,
    krcc,
    logistic4,
    logistic4_fit,
    plcc,
    rankdata,
    rmse,
    srocc,
)


def tied_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlated integer-valued data: many ties in both variables."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 8, n).astype(np.float64)
    y = np.round(0.6 * x + rng.normal(0, 1.5, n))
    return x, y


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [3, 10, 97, 1000])
def test_correlations_match_scipy_with_ties(seed, n):
    x, y = tied_data(seed, n)
    assert srocc(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-10)
    assert krcc(x, y) == pytest.approx(sps.kendalltau(x, y).statistic, abs=1e-10)  # tau-b
    assert plcc(x, y) == pytest.approx(sps.pearsonr(x, y).statistic, abs=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_correlations_match_scipy_on_continuous_data(seed):
    rng = np.random.default_rng(100 + seed)
    x = rng.normal(size=500)
    y = np.exp(x) + rng.normal(0, 0.5, 500)
    assert srocc(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-10)
    assert krcc(x, y) == pytest.approx(sps.kendalltau(x, y).statistic, abs=1e-10)
    assert plcc(x, y) == pytest.approx(sps.pearsonr(x, y).statistic, abs=1e-10)


def test_krcc_is_exact_on_a_large_set():
    rng = np.random.default_rng(7)
    x = np.round(rng.normal(size=5000), 2)
    y = np.round(x + rng.normal(size=5000), 1)
    assert krcc(x, y) == pytest.approx(sps.kendalltau(x, y).statistic, abs=1e-10)


def test_rankdata_matches_scipy_average_ranks():
    x, _ = tied_data(1, 200)
    np.testing.assert_array_equal(rankdata(x), sps.rankdata(x))


def test_negative_correlation_keeps_its_sign():
    x, y = tied_data(2, 300)
    assert srocc(x, -y) == pytest.approx(-srocc(x, y), abs=1e-12)
    assert krcc(x, -y) == pytest.approx(-krcc(x, y), abs=1e-12)


def test_nan_and_infinite_pairs_are_dropped():
    x, y = tied_data(3, 100)
    x_nan, y_nan = x.copy(), y.copy()
    x_nan[[4, 50]] = np.nan
    x_nan[60] = np.inf  # PSNR of an identical pair
    y_nan[[7]] = np.nan
    keep = np.isfinite(x_nan) & np.isfinite(y_nan)
    assert srocc(x_nan, y_nan) == pytest.approx(sps.spearmanr(x[keep], y[keep]).statistic, abs=1e-10)
    assert krcc(x_nan, y_nan) == pytest.approx(sps.kendalltau(x[keep], y[keep]).statistic, abs=1e-10)
    assert plcc(x_nan, y_nan) == pytest.approx(sps.pearsonr(x[keep], y[keep]).statistic, abs=1e-10)
    report = correlation_report(x_nan, y_nan)
    assert report["n"] == 96 and report["n_dropped"] == 4
    assert all(np.isfinite(report["logistic_params"]))


def test_constant_or_tiny_input_gives_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for func in (srocc, krcc, plcc):
            assert math.isnan(func([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
            assert math.isnan(func([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
            assert math.isnan(func([1.0], [2.0]))
            assert math.isnan(func([], []))
        report = correlation_report([2.0] * 6, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], ["a"] * 6)
    assert math.isnan(report["srocc"]) and math.isnan(report["plcc_logistic"])
    assert math.isfinite(report["rmse_logistic"])  # the fallback curve is the mean rating
    assert all(math.isfinite(p) for p in report["logistic_params"])


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in length"):
        srocc([1, 2, 3], [1, 2])


def test_rmse():
    assert rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]) == pytest.approx(math.sqrt(4 / 3))
    assert math.isnan(rmse([], []))


def test_logistic_recovers_noiseless_parameters():
    x = np.linspace(0.0, 1.0, 60)
    truth = [8.0, 1.0, 0.45, 0.08]
    params = logistic4_fit(x, logistic4(x, truth))
    np.testing.assert_allclose(logistic4(x, params), logistic4(x, truth), atol=1e-6)
    np.testing.assert_allclose(params, truth, rtol=1e-4)


def test_logistic_fit_improves_plcc_on_a_monotone_nonlinear_relation():
    rng = np.random.default_rng(11)
    pred = rng.uniform(15, 45, 400)  # PSNR-like
    mos = 1 + 6 / (1 + np.exp(-(pred - 30) / 3)) + rng.normal(0, 0.2, pred.size)
    params = logistic4_fit(pred, mos)
    fitted = logistic4(pred, params)
    assert plcc(fitted, mos) > plcc(pred, mos) + 0.02
    assert plcc(fitted, mos) > 0.98
    assert rmse(fitted, mos) < 0.3
    assert srocc(fitted, mos) == pytest.approx(srocc(pred, mos))  # monotone increasing fit


def test_logistic_fit_follows_a_decreasing_relation():
    rng = np.random.default_rng(12)
    pred = rng.uniform(0, 1, 300)  # a distance: higher is worse
    dmos = 80 - 70 / (1 + np.exp(-(pred - 0.5) / 0.1)) + rng.normal(0, 2, pred.size)
    fitted = logistic4(pred, logistic4_fit(pred, dmos))
    assert plcc(fitted, dmos) > abs(plcc(pred, dmos))
    assert plcc(fitted, dmos) > 0.97


def test_logistic_fit_is_at_least_as_good_as_scipy_curve_fit():
    from scipy.optimize import curve_fit

    rng = np.random.default_rng(13)
    pred = rng.normal(0.9, 0.05, 300)
    mos = 10 * pred**6 + rng.normal(0, 0.4, pred.size)

    def f(x, b1, b2, b3, b4):
        return (b1 - b2) / (1 + np.exp(-(x - b3) / abs(b4))) + b2

    start = [mos.max(), mos.min(), pred.mean(), pred.std()]
    reference = curve_fit(f, pred, mos, p0=start, maxfev=20000)[0]
    ours = logistic4_fit(pred, mos)
    sse_ours = np.sum((mos - logistic4(pred, ours)) ** 2)
    sse_ref = np.sum((mos - f(pred, *reference)) ** 2)
    assert sse_ours <= sse_ref * (1 + 1e-6)


def test_correlation_report_fields_and_per_type():
    rng = np.random.default_rng(14)
    pred = rng.normal(size=120)
    mos = pred + rng.normal(0, 0.5, 120)
    types = ["blur"] * 60 + ["noise"] * 60
    report = correlation_report(pred, mos, types)
    assert set(report) == {
        "n",
        "n_dropped",
        "srocc",
        "krcc",
        "plcc",
        "plcc_logistic",
        "rmse_logistic",
        "logistic_params",
        "per_type",
    }
    assert report["n"] == 120
    assert report["srocc"] == pytest.approx(sps.spearmanr(pred, mos).statistic, abs=1e-10)
    assert list(report["per_type"]) == ["blur", "noise"]
    blur = report["per_type"]["blur"]
    assert blur["n"] == 60
    assert blur["srocc"] == pytest.approx(sps.spearmanr(pred[:60], mos[:60]).statistic, abs=1e-10)
    assert report["plcc_logistic"] >= report["plcc"] - 1e-9
    assert isinstance(report["srocc"], float) and isinstance(report["logistic_params"], list)
    with pytest.raises(ValueError, match="types"):
        correlation_report(pred, mos, types[:10])


def test_scatter_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(15)
    pred = rng.uniform(20, 40, 80)
    mos = 1 + 6 / (1 + np.exp(-(pred - 30) / 3)) + rng.normal(0, 0.3, 80)
    pred[3] = np.inf  # e.g. PSNR of an identical pair
    mos[5] = np.nan
    out = tmp_path / "sub" / "scatter.png"
    scatter_plot(
        pred,
        mos,
        out,
        title="PSNR",
        xlabel="PSNR (dB)",
        ylabel="MOS",
        fit_params=logistic4_fit(pred[np.isfinite(pred)], mos[np.isfinite(pred)]),
        types=["a", "b", "c", "d"] * 20,
    )
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (960, 680)
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels < 200).any()  # something was drawn
    scatter_plot([1.0, 1.0], [2.0, 2.0], tmp_path / "flat.png", title="t", xlabel="x", ylabel="y")
    assert (tmp_path / "flat.png").stat().st_size > 0
