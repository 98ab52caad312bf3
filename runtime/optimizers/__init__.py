"""Optimizers: programs in, better programs out (see docs/optimizers.md).

Each optimizer's ``compile(student, trainset=...)`` returns a new program of the
student's type with optimized demos (and, for instruction optimizers, instructions),
records how it was made in ``program.optimization``, and never changes the student.
``Ensemble`` and ``KNNFewShot`` return a module around copies of the programs instead.
"""

from .base import DEFAULT_MAX_ERRORS, Optimizer, OptimizerError, optimization_record
from .bootstrap import BootstrapFewShot
from .copro import COPRO
from .ensemble import Ensemble, EnsembleProgram, majority
from .gepa import GEPA
from .knn import KNNFewShot, KNNProgram
from .labeled import LabeledFewShot
from .mipro import MIPROv2
from .random_search import BootstrapFewShotWithRandomSearch, Candidate

__all__ = [
    "COPRO",
    "DEFAULT_MAX_ERRORS",
    "GEPA",
    "BootstrapFewShot",
    "BootstrapFewShotWithRandomSearch",
    "Candidate",
    "Ensemble",
    "EnsembleProgram",
    "KNNFewShot",
    "KNNProgram",
    "LabeledFewShot",
    "MIPROv2",
    "Optimizer",
    "OptimizerError",
    "majority",
    "optimization_record",
]
