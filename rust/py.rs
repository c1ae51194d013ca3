//! The Python binding: the only file that knows about PyO3 and numpy.
//!
//! Arrays arrive as numpy views (no copy for contiguous arrays of a native
//! dtype), work runs with the interpreter detached so other Python threads go
//! on, and core errors become the `persona_exp.errors` class of their kind.

use numpy::{
    dtype, IntoPyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::calibrate;
use crate::error::{Error, ErrorKind};
use crate::pairs;
use crate::resample;
use crate::stats::bootstrap::Method;
use crate::stats::design::Ci;
use crate::stats::fleiss::{fleiss_kappa as fleiss, FleissMethod};
use crate::stats::{confusion as conf, intervals, kappa, mean, winrate, Weights};

fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let message = format!("{} {}", e.arg, e.message);
    let class = py
        .import("persona_exp.errors")
        .and_then(|m| m.getattr(e.kind.class_name()))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(cls) => PyErr::from_type(cls, message),
        Err(err) => err,
    }
}

trait OrPy<T> {
    fn or_py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrPy<T> for crate::error::Result<T> {
    fn or_py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

fn data_error(py: Python<'_>, arg: &'static str, message: impl Into<String>) -> PyErr {
    to_py(py, Error::new(ErrorKind::Data, arg, message))
}

fn untyped<'a, 'py>(py: Python<'py>, obj: &'a Bound<'py, PyAny>, arg: &'static str) -> PyResult<&'a Bound<'py, PyUntypedArray>> {
    obj.cast::<PyUntypedArray>().map_err(|_| data_error(py, arg, "must be a numpy array"))
}

/// Contiguous slice view of a numpy array of element type `T`.
fn view<'py, T: numpy::Element>(py: Python<'py>, obj: &Bound<'py, PyAny>, arg: &'static str) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    let arr: PyReadonlyArrayDyn<'py, T> = obj.extract().map_err(|_| {
        data_error(py, arg, "has a different dtype from the other label arrays; cast them to one integer dtype")
    })?;
    if !arr.is_contiguous() {
        return Err(data_error(py, arg, "must be C-contiguous"));
    }
    Ok(arr)
}

/// Runs `$body` with `$T` bound to the element type of the label array `$obj`.
macro_rules! with_label_type {
    ($py:expr, $obj:expr, $arg:expr, $T:ident, $body:block) => {{
        let dt = untyped($py, $obj, $arg)?.dtype();
        if dt.is_equiv_to(&dtype::<i64>($py)) {
            type $T = i64;
            $body
        } else if dt.is_equiv_to(&dtype::<i32>($py)) {
            type $T = i32;
            $body
        } else if dt.is_equiv_to(&dtype::<i16>($py)) {
            type $T = i16;
            $body
        } else if dt.is_equiv_to(&dtype::<i8>($py)) {
            type $T = i8;
            $body
        } else if dt.is_equiv_to(&dtype::<u8>($py)) {
            type $T = u8;
            $body
        } else {
            Err(data_error($py, $arg, format!("has dtype {dt}; labels must be int8, uint8, int16, int32 or int64")))
        }
    }};
}

fn method(py: Python<'_>, s: &str) -> PyResult<Method> {
    Method::parse(s).or_py(py)
}

fn weights(py: Python<'_>, s: &str) -> PyResult<Weights> {
    Weights::parse(s).or_py(py)
}

#[pyfunction]
fn confusion<'py>(py: Python<'py>, a: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>, k: Option<usize>) -> PyResult<Bound<'py, PyArray2<i64>>> {
    with_label_type!(py, a, "a", T, {
        let (va, vb) = (view::<T>(py, a, "a")?, view::<T>(py, b, "b")?);
        let (sa, sb) = (va.as_slice().unwrap(), vb.as_slice().unwrap());
        let (k, t) = py.detach(|| conf::confusion(sa, sb, k)).or_py(py)?;
        let t: Vec<i64> = t.into_iter().map(|c| c as i64).collect();
        t.into_pyarray(py).reshape([k, k])
    })
}

#[pyfunction]
fn agreement<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    k: Option<usize>,
    weights_name: &str,
) -> PyResult<(f64, f64, f64, u64, usize)> {
    let w = weights(py, weights_name)?;
    with_label_type!(py, a, "a", T, {
        let (va, vb) = (view::<T>(py, a, "a")?, view::<T>(py, b, "b")?);
        let (sa, sb) = (va.as_slice().unwrap(), vb.as_slice().unwrap());
        let (k, ag) = py.detach(|| kappa::agreement(sa, sb, k, w)).or_py(py)?;
        Ok((ag.kappa, ag.observed, ag.expected, ag.n, k))
    })
}

#[pyfunction]
fn kappa_matrix<'py>(py: Python<'py>, labels: &Bound<'py, PyAny>, k: Option<usize>, weights_name: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let w = weights(py, weights_name)?;
    let shape = untyped(py, labels, "labels")?.shape().to_vec();
    let (m, n) = (shape[0], shape[1]);
    with_label_type!(py, labels, "labels", T, {
        let v = view::<T>(py, labels, "labels")?;
        let s = v.as_slice().unwrap();
        let out = py.detach(|| kappa::kappa_matrix(s, m, n, k, w)).or_py(py)?;
        out.into_pyarray(py).reshape([m, m])
    })
}

#[pyfunction]
fn fleiss_kappa(py: Python<'_>, counts: PyReadonlyArray2<'_, f64>, method_name: &str) -> PyResult<f64> {
    let m = FleissMethod::parse(method_name).or_py(py)?;
    let (items, k) = (counts.shape()[0], counts.shape()[1]);
    let s = counts.as_slice().map_err(|_| data_error(py, "counts", "must be C-contiguous"))?;
    py.detach(|| fleiss(s, items, k, m)).or_py(py)
}

/// The design's factors: 0, 1 or 2 id arrays with their names.
fn cluster_slices<'a>(ids: &'a [PyReadonlyArray1<'_, i64>], names: &'a [String]) -> Vec<(&'a [i64], &'a str)> {
    ids.iter()
        .zip(names)
        .map(|(c, name)| (c.as_slice().expect("the facade passes contiguous cluster ids"), name.as_str()))
        .collect()
}

/// An interval as (estimate, low, high, se, method, units, n, undefined, n_resamples, warnings).
type CiTuple = (f64, f64, f64, f64, String, Vec<usize>, u64, usize, usize, Vec<String>);

fn ci_tuple(c: Ci) -> CiTuple {
    (c.estimate, c.low, c.high, c.se, c.method, c.units, c.n, c.undefined, c.n_resamples, c.warnings)
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn kappa_bootstrap<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    k: Option<usize>,
    weights_name: &str,
    clusters: Vec<PyReadonlyArray1<'py, i64>>,
    cluster_names: Vec<String>,
    n_resamples: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let w = weights(py, weights_name)?;
    let cl = cluster_slices(&clusters, &cluster_names);
    with_label_type!(py, a, "a", T, {
        let (va, vb) = (view::<T>(py, a, "a")?, view::<T>(py, b, "b")?);
        let (sa, sb) = (va.as_slice().unwrap(), vb.as_slice().unwrap());
        let out = py.detach(|| intervals::kappa_bootstrap(sa, sb, k, w, &cl, n_resamples, seed)).or_py(py)?;
        Ok(out.into_pyarray(py))
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn kappa_ci<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    k: Option<usize>,
    weights_name: &str,
    clusters: Vec<PyReadonlyArray1<'py, i64>>,
    cluster_names: Vec<String>,
    n_resamples: usize,
    level: f64,
    method_name: &str,
    seed: u64,
) -> PyResult<CiTuple> {
    let (w, m) = (weights(py, weights_name)?, method(py, method_name)?);
    let cl = cluster_slices(&clusters, &cluster_names);
    with_label_type!(py, a, "a", T, {
        let (va, vb) = (view::<T>(py, a, "a")?, view::<T>(py, b, "b")?);
        let (sa, sb) = (va.as_slice().unwrap(), vb.as_slice().unwrap());
        py.detach(|| intervals::kappa_ci(sa, sb, k, w, &cl, n_resamples, level, m, seed)).map(ci_tuple).or_py(py)
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn kappa_diff_ci<'py>(
    py: Python<'py>,
    a1: &Bound<'py, PyAny>,
    b1: &Bound<'py, PyAny>,
    a2: &Bound<'py, PyAny>,
    b2: &Bound<'py, PyAny>,
    k: Option<usize>,
    weights_name: &str,
    clusters: Vec<PyReadonlyArray1<'py, i64>>,
    cluster_names: Vec<String>,
    n_resamples: usize,
    level: f64,
    method_name: &str,
    seed: u64,
) -> PyResult<CiTuple> {
    let (w, m) = (weights(py, weights_name)?, method(py, method_name)?);
    let cl = cluster_slices(&clusters, &cluster_names);
    with_label_type!(py, a1, "a1", T, {
        let (v1, v2, v3, v4) = (view::<T>(py, a1, "a1")?, view::<T>(py, b1, "b1")?, view::<T>(py, a2, "a2")?, view::<T>(py, b2, "b2")?);
        let (s1, s2, s3, s4) = (v1.as_slice().unwrap(), v2.as_slice().unwrap(), v3.as_slice().unwrap(), v4.as_slice().unwrap());
        py.detach(|| intervals::kappa_diff_ci(s1, s2, s3, s4, k, w, &cl, n_resamples, level, m, seed)).map(ci_tuple).or_py(py)
    })
}

#[pyfunction]
fn win_rate_ci(
    py: Python<'_>,
    outcomes: PyReadonlyArray1<'_, f64>,
    clusters: Vec<PyReadonlyArray1<'_, i64>>,
    cluster_names: Vec<String>,
    n_resamples: usize,
    level: f64,
    method_name: &str,
    seed: u64,
) -> PyResult<CiTuple> {
    let m = method(py, method_name)?;
    let o = outcomes.as_slice().map_err(|_| data_error(py, "outcomes", "must be C-contiguous"))?;
    let cl = cluster_slices(&clusters, &cluster_names);
    py.detach(|| winrate::win_rate_ci(o, &cl, n_resamples, level, m, seed)).map(ci_tuple).or_py(py)
}

#[pyfunction]
fn mean_ci(
    py: Python<'_>,
    values: PyReadonlyArray1<'_, f64>,
    clusters: Vec<PyReadonlyArray1<'_, i64>>,
    cluster_names: Vec<String>,
    n_resamples: usize,
    level: f64,
    method_name: &str,
    seed: u64,
) -> PyResult<CiTuple> {
    let m = method(py, method_name)?;
    let v = values.as_slice().map_err(|_| data_error(py, "values", "must be C-contiguous"))?;
    let cl = cluster_slices(&clusters, &cluster_names);
    py.detach(|| mean::mean_ci(v, &cl, n_resamples, level, m, seed)).map(ci_tuple).or_py(py)
}

#[pyfunction]
#[pyo3(signature = (weights, n, replace, seed, in_draw_order=false))]
fn weighted_sample<'py>(py: Python<'py>, weights: PyReadonlyArray1<'py, f64>, n: usize, replace: bool, seed: u64, in_draw_order: bool) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let w = weights.as_slice().map_err(|_| data_error(py, "weights", "must be C-contiguous"))?;
    let out = py
        .detach(|| match (replace, in_draw_order) {
            (true, _) => resample::sample_with_replacement(w, n, seed),
            (false, false) => resample::sample_without_replacement(w, n, seed),
            (false, true) => resample::sample_without_replacement_in_draw_order(w, n, seed),
        })
        .or_py(py)?;
    Ok(out.into_pyarray(py))
}

/// (weights, iterations, max relative error, converged, per-margin target scales)
type RakeTuple<'py> = (Bound<'py, PyArray1<f64>>, usize, f64, bool, Vec<f64>);

#[pyfunction]
fn rake<'py>(
    py: Python<'py>,
    initial: PyReadonlyArray1<'py, f64>,
    categories: Vec<PyReadonlyArray1<'py, i64>>,
    targets: Vec<PyReadonlyArray1<'py, f64>>,
    tolerance: f64,
    max_iterations: usize,
) -> PyResult<RakeTuple<'py>> {
    let w = initial.as_slice().map_err(|_| data_error(py, "initial", "must be C-contiguous"))?;
    if categories.len() != targets.len() {
        return Err(to_py(py, Error::new(ErrorKind::LengthMismatch, "targets", format!("has {} arrays but categories has {}; give one per margin", targets.len(), categories.len()))));
    }
    let mut margins = Vec::with_capacity(categories.len());
    for (c, t) in categories.iter().zip(&targets) {
        let categories = c.as_slice().map_err(|_| data_error(py, "categories", "must be C-contiguous"))?;
        let targets = t.as_slice().map_err(|_| data_error(py, "targets", "must be C-contiguous"))?;
        margins.push(calibrate::Margin { categories, targets });
    }
    let r = py.detach(|| calibrate::rake(w, &margins, tolerance, max_iterations)).or_py(py)?;
    Ok((r.weights.into_pyarray(py), r.iterations, r.max_rel_error, r.converged, r.scales))
}

#[pyfunction]
fn assign_prompts(py: Python<'_>, n_personas: usize, pool_size: usize, n_per_persona: usize, seed: u64) -> PyResult<Bound<'_, PyArray2<i64>>> {
    let out = py.detach(|| pairs::assign_prompts(n_personas, pool_size, n_per_persona, seed)).or_py(py)?;
    out.into_pyarray(py).reshape([n_personas, n_per_persona])
}

type AlignedArrays<'py> = (
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
);

#[pyfunction]
fn align<'py>(
    py: Python<'py>,
    keys_a: PyReadonlyArray1<'py, u64>,
    labels_a: PyReadonlyArray1<'py, i64>,
    keys_b: PyReadonlyArray1<'py, u64>,
    labels_b: PyReadonlyArray1<'py, i64>,
) -> PyResult<AlignedArrays<'py>> {
    let contiguous = |arg: &'static str| move |_| data_error(py, arg, "must be C-contiguous");
    let (ka, kb) = (keys_a.as_slice().map_err(contiguous("keys_a"))?, keys_b.as_slice().map_err(contiguous("keys_b"))?);
    let (la, lb) = (labels_a.as_slice().map_err(contiguous("labels_a"))?, labels_b.as_slice().map_err(contiguous("labels_b"))?);
    let r = py.detach(|| pairs::align(ka, la, kb, lb)).or_py(py)?;
    Ok((r.keys.into_pyarray(py), r.a.into_pyarray(py), r.b.into_pyarray(py), r.index_a.into_pyarray(py), r.index_b.into_pyarray(py)))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(confusion, m)?)?;
    m.add_function(wrap_pyfunction!(agreement, m)?)?;
    m.add_function(wrap_pyfunction!(kappa_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(fleiss_kappa, m)?)?;
    m.add_function(wrap_pyfunction!(kappa_bootstrap, m)?)?;
    m.add_function(wrap_pyfunction!(kappa_ci, m)?)?;
    m.add_function(wrap_pyfunction!(kappa_diff_ci, m)?)?;
    m.add_function(wrap_pyfunction!(win_rate_ci, m)?)?;
    m.add_function(wrap_pyfunction!(mean_ci, m)?)?;
    m.add_function(wrap_pyfunction!(weighted_sample, m)?)?;
    m.add_function(wrap_pyfunction!(rake, m)?)?;
    m.add_function(wrap_pyfunction!(assign_prompts, m)?)?;
    m.add_function(wrap_pyfunction!(align, m)?)?;
    Ok(())
}
