# Stubs for the native module built from rust/py.rs. The public, documented API
# is persona_exp.stats; a test keeps this file in step with the module.
import numpy as np
import numpy.typing as npt

__version__: str

# (estimate, low, high, se, method, units, n, undefined, n_resamples, warnings)
CiTuple = tuple[float, float, float, float, str, list[int], int, int, int, list[str]]

def confusion(a: npt.NDArray[np.integer], b: npt.NDArray[np.integer], k: int | None) -> npt.NDArray[np.int64]: ...
def agreement(
    a: npt.NDArray[np.integer], b: npt.NDArray[np.integer], k: int | None, weights_name: str
) -> tuple[float, float, float, int, int]: ...
def kappa_matrix(labels: npt.NDArray[np.integer], k: int | None, weights_name: str) -> npt.NDArray[np.float64]: ...
def fleiss_kappa(counts: npt.NDArray[np.float64], method_name: str) -> float: ...
def kappa_bootstrap(
    a: npt.NDArray[np.integer],
    b: npt.NDArray[np.integer],
    k: int | None,
    weights_name: str,
    clusters: list[npt.NDArray[np.int64]],
    cluster_names: list[str],
    n_resamples: int,
    seed: int,
) -> npt.NDArray[np.float64]: ...
def kappa_ci(
    a: npt.NDArray[np.integer],
    b: npt.NDArray[np.integer],
    k: int | None,
    weights_name: str,
    clusters: list[npt.NDArray[np.int64]],
    cluster_names: list[str],
    n_resamples: int,
    level: float,
    method_name: str,
    seed: int,
) -> CiTuple: ...
def kappa_diff_ci(
    a1: npt.NDArray[np.integer],
    b1: npt.NDArray[np.integer],
    a2: npt.NDArray[np.integer],
    b2: npt.NDArray[np.integer],
    k: int | None,
    weights_name: str,
    clusters: list[npt.NDArray[np.int64]],
    cluster_names: list[str],
    n_resamples: int,
    level: float,
    method_name: str,
    seed: int,
) -> CiTuple: ...
def win_rate_ci(
    outcomes: npt.NDArray[np.float64],
    clusters: list[npt.NDArray[np.int64]],
    cluster_names: list[str],
    n_resamples: int,
    level: float,
    method_name: str,
    seed: int,
) -> CiTuple: ...
def mean_ci(
    values: npt.NDArray[np.float64],
    clusters: list[npt.NDArray[np.int64]],
    cluster_names: list[str],
    n_resamples: int,
    level: float,
    method_name: str,
    seed: int,
) -> CiTuple: ...
def weighted_sample(weights: npt.NDArray[np.float64], n: int, replace: bool, seed: int, in_draw_order: bool = False) -> npt.NDArray[np.int64]: ...
def rake(
    initial: npt.NDArray[np.float64],
    categories: list[npt.NDArray[np.int64]],
    targets: list[npt.NDArray[np.float64]],
    tolerance: float,
    max_iterations: int,
) -> tuple[npt.NDArray[np.float64], int, float, bool, list[float]]: ...
def assign_prompts(n_personas: int, pool_size: int, n_per_persona: int, seed: int) -> npt.NDArray[np.int64]: ...
def align(
    keys_a: npt.NDArray[np.uint64],
    labels_a: npt.NDArray[np.int64],
    keys_b: npt.NDArray[np.uint64],
    labels_b: npt.NDArray[np.int64],
) -> tuple[
    npt.NDArray[np.uint64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
]: ...
