"""Symmetrical components and per-phase power from RMS phasors (C. L. Fortescue, 1918)."""

from __future__ import annotations

import numpy as np

__all__ = ["A_OPERATOR", "from_sequence", "per_phase_power", "positive_sequence", "sequence_components"]

A_OPERATOR = np.exp(2j * np.pi / 3)
_A = A_OPERATOR
_TO_SEQ = np.array([[1, 1, 1], [1, _A, _A**2], [1, _A**2, _A]]) / 3.0
_FROM_SEQ = np.array([[1, 1, 1], [1, _A**2, _A], [1, _A, _A**2]])


def sequence_components(abc: np.ndarray) -> np.ndarray:
    """Zero, positive and negative sequence components of phase phasors.

    Parameters
    ----------
    abc : numpy.ndarray of complex, shape (3, ...) or (..., 3) with ``axis`` last
        Phase phasors A, B, C on the first axis (V or A, RMS).

    Returns
    -------
    numpy.ndarray of complex, same shape
        ``[X0, X1, X2]`` with ``X1 = (Xa + a Xb + a^2 Xc) / 3``, ``a = exp(j 2 pi / 3)``.
    """
    abc = np.asarray(abc, dtype=np.complex128)
    if abc.ndim == 0 or abc.shape[0] != 3:
        raise ValueError(f"sequence_components needs 3 phases on the first axis, got shape {abc.shape}")
    if abc.ndim <= 2:
        return _TO_SEQ @ abc  # (the same product as tensordot, without its reshaping overhead)
    return np.tensordot(_TO_SEQ, abc, axes=1)


_A_PY = complex(_A)
_A2_PY = complex(_A**2)


def positive_sequence(a: complex, b: complex, c: complex) -> complex:
    """Positive-sequence component ``(Xa + a Xb + a^2 Xc) / 3`` of three phasors (fast scalar form)."""
    return (complex(a) + _A_PY * complex(b) + _A2_PY * complex(c)) / 3.0


def from_sequence(seq: np.ndarray) -> np.ndarray:
    """Phase phasors A, B, C from ``[X0, X1, X2]`` (inverse of :func:`sequence_components`)."""
    seq = np.asarray(seq, dtype=np.complex128)
    if seq.ndim == 0 or seq.shape[0] != 3:
        raise ValueError(f"from_sequence needs 3 components on the first axis, got shape {seq.shape}")
    if seq.ndim <= 2:
        return _FROM_SEQ @ seq
    return np.tensordot(_FROM_SEQ, seq, axes=1)


def per_phase_power(v: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Active and reactive power per phase from phase-to-ground voltage and line current phasors.

    Parameters
    ----------
    v : numpy.ndarray of complex
        Phase-to-ground voltage phasors, RMS V.
    i : numpy.ndarray of complex
        Current phasors, RMS A (same shape).

    Returns
    -------
    (p_w, q_var) : tuple of numpy.ndarray
        ``S = V conj(I)``; P in W, Q in var (positive for inductive load).
    """
    s = np.asarray(v, dtype=np.complex128) * np.conj(np.asarray(i, dtype=np.complex128))
    return s.real, s.imag
