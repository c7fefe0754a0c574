"""CPU threads: set for a call, restored after it, bit-identical for a fixed number."""

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import skae
from skae._threads import available_cpus, call_thread_limits, call_threads

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blas_threads():
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_auto_leaves_one_core_within_torchs_own_setting():
    expected = max(1, min(torch.get_num_threads(), available_cpus() - 1))
    assert call_threads("auto") == expected
    assert call_threads(3) == 3
    with skae.config_context(n_threads=2):
        assert call_threads() == 2


def test_a_call_sets_torch_and_blas_threads_and_restores_them():
    before, blas_before = torch.get_num_threads(), blas_threads()
    with skae.config_context(n_threads=1):
        with pytest.raises(RuntimeError, match="inside"):
            with call_thread_limits("cpu"):
                assert torch.get_num_threads() == 1
                assert all(n == 1 for n in blas_threads())
                raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    assert blas_threads() == blas_before


def test_fit_and_transform_run_on_the_configured_threads(make_estimator, small_X, monkeypatch):
    seen = []
    set_num_threads = torch.set_num_threads

    def recording(n):
        seen.append(n)
        set_num_threads(n)

    monkeypatch.setattr(torch, "set_num_threads", recording)
    before = torch.get_num_threads()
    with skae.config_context(n_threads=before + 1):
        estimator = make_estimator().fit(small_X)
        assert seen == [before + 1, before]  # set for the fit, then restored
        estimator.transform(small_X)
        assert seen == [before + 1, before] * 2
    assert torch.get_num_threads() == before


def test_overlapping_calls_in_threads_restore_the_first_state():
    # A starts, B starts, A ends, B ends: the settings from before A come back.
    import threading

    before = torch.get_num_threads()
    a_inside, b_done = threading.Event(), threading.Event()

    def call_a():
        with skae.config_context(n_threads=before + 1), call_thread_limits("cpu"):
            a_inside.set()
            b_done.wait(timeout=30)

    def call_b():
        a_inside.wait(timeout=30)
        with skae.config_context(n_threads=before + 1), call_thread_limits("cpu"):
            assert torch.get_num_threads() == before + 1
        b_done.set()

    threads = [threading.Thread(target=call_a), threading.Thread(target=call_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert torch.get_num_threads() == before
    with call_thread_limits("cpu"), call_thread_limits("cpu"):
        pass
    assert torch.get_num_threads() == before


def test_a_fixed_number_of_threads_is_bit_identical(make_estimator, small_X):
    with skae.config_context(n_threads=1):
        first = make_estimator(random_state=0).fit(small_X).transform(small_X)
        second = make_estimator(random_state=0).fit(small_X).transform(small_X)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("value", [0, -1, True, "2", 1.5, "all"])
def test_n_threads_setting_is_checked(value):
    before = skae.get_config()
    with pytest.raises(ValueError, match='n_threads must be a positive integer or "auto"'):
        skae.set_config(n_threads=value, memory_budget=5)
    assert skae.get_config() == before  # nothing changed, not even memory_budget


def test_n_threads_goes_back_to_auto():
    with skae.config_context(n_threads=2):
        skae.set_config(n_threads="auto")
        assert skae.get_config()["n_threads"] == "auto"
