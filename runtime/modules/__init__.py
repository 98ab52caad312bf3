"""The module kinds beyond ``predict`` and ``chain_of_thought``, and ``Parallel``.

Generated predictors of these kinds subclass the classes here (see docs/modules.md):
:class:`ReAct` (tools, a loop of thought and tool call, then extraction),
:class:`ProgramOfThought` (generated Python run in the sandbox), :class:`MultiChainComparison`,
:class:`BestOfN` and :class:`Refine`. Each is a :class:`~sigforge.runtime.module.Module`
whose inner predictors are attributes, so optimizers, ``save``/``load`` and ``deepcopy``
see them; each kind's control flow is written once for blocking and async calls (see
``_episode``). :class:`Parallel` runs many ``(program, inputs)`` pairs at once.
"""

from .comparison import MultiChainComparison
from .parallel import Parallel
from .program_of_thought import ProgramOfThought, ProgramOfThoughtError
from .react import Finish, InvalidToolCall, ReAct, ReActStep, ToolCallError
from .sampling import AttemptsFailedError, BestOfN, Refine

__all__ = [
    "AttemptsFailedError",
    "BestOfN",
    "Finish",
    "InvalidToolCall",
    "MultiChainComparison",
    "Parallel",
    "ProgramOfThought",
    "ProgramOfThoughtError",
    "ReAct",
    "ReActStep",
    "Refine",
    "ToolCallError",
]
