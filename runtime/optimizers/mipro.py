"""MIPROv2: instructions and demo sets chosen together by Bayesian search (DSPy's ``MIPROv2``).

How it compiles, as in DSPy:

0. **Data.** Without a ``valset``, the last 80% of the training set (at most 1000
   examples) becomes the valset. With ``auto`` (``"light"``, ``"medium"``,
   ``"heavy"``), the valset is a seeded sample of at most 100 / 300 / 1000 examples,
   minibatches are used only when it has more than 50, there are ``n`` = 6 / 12 / 18
   demo-set candidates and ``n`` instruction candidates (``n // 2`` when demos are
   optimized too), and ``num_trials = max(2 * v * log2(n), 1.5 * n)`` for ``v``
   variables (one per predictor, two with demos). Without ``auto``, ``num_candidates``
   and ``num_trials`` are required.
1. **Demo sets.** ``num_candidates`` candidate demo sets per predictor, built as
   :class:`~sigforge.runtime.optimizers.random_search.BootstrapFewShotWithRandomSearch`
   builds its candidates (candidate seeds ``-3, -2, -1, 0, ...``: no demos, labeled
   demos, bootstrapped, shuffled bootstraps of random size) on the training set. When
   both ``max_bootstrapped_demos`` and ``max_labeled_demos`` are 0 (instructions only),
   sets of 3 bootstrapped demos are still built, to show the proposer, then dropped.
2. **Instructions.** A grounded proposer writes the candidates of each predictor with the
   ``prompt_model``: a summary of the training data (``data_aware_proposer``: the
   :mod:`~sigforge.runtime.optimizers.prompts.mipro` prompts ``DescribeDataset`` over
   the first ``view_data_batch_size`` examples, ``DescribeMoreData`` over the next
   batches -- at most 10 calls, stopping after 5 answers of ``COMPLETE`` -- and
   ``SummarizeObservations``), a description of the program and of each predictor's
   role in it (``program_aware_proposer``), up to 3 demos of the candidate demo set
   (``fewshot_aware_proposer``) and a tip drawn at random (``tip_aware_proposer``).
   Candidate ``k`` of a predictor is grounded in demo set ``k``; each proposal is a
   separate answer (a ``rollout_id`` drawn from the seed, ``init_temperature``).
   Candidate 0 is the instruction in use.
3. **Search.** optuna's ``TPESampler(seed=seed, multivariate=True)`` chooses, for each
   trial, an instruction candidate and a demo set per predictor. The student as given
   is scored on the full valset first (and told to the sampler as a trial). Each trial
   scores its program on a minibatch of ``minibatch_size`` valset examples (the whole
   valset with ``minibatch=False``); every ``minibatch_full_eval_steps`` trials, and
   at the end, the combination with the best mean minibatch score that was not yet
   fully scored is scored on the full valset (and told to the sampler). The program
   returned is the best fully scored one.

Differences from DSPy:

* The program is described once per compile (one ``DescribeProgram`` call, one
  ``DescribeModule`` per predictor, from the first demo set's demos); DSPy describes it
  again for each proposal. The proposal of candidate 0, which DSPy makes and then
  replaces by the instruction in use, is not made (its random draws are).
* The proposer is shown demos of every kind (DSPy shows only bootstrapped ones, which
  sigforge's demos do not mark), written as ``field: value`` lines.
* A candidate scored before on the same examples is not run again (DSPy runs it and its
  LM cache answers).
* optuna is an optional dependency (``pip install 'sigforge[optimize]'``); without it
  ``compile`` raises :class:`~sigforge.runtime.errors.ConfigurationError` before any LM
  call.
* Failed examples count as ``failure_score`` 0 up to ``max_errors`` (default 10) per
  evaluation, then the evaluation raises
  :class:`~sigforge.runtime.evaluate.TooManyErrorsError`; DSPy scores such a trial 0.

The optimization record holds the baseline and best scores, every trial (its kind,
minibatch or full, the parameters and the score), the candidate instructions, the demo
set sizes and the data summary.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from ..errors import ConfigurationError
from ..example import Example
from ..metrics import Metric
from ..module import Program
from ..predictors import Demo
from ._proposer import (
    Scorer,
    clean_instruction,
    demo_text,
    example_text,
    instructions_of,
    mean,
    program_outline,
    proposer_config,
    run_all,
    with_instructions,
)
from .base import Optimizer, ProgramT, callable_name, deep_copy, progress_bar, tracked_calls

if TYPE_CHECKING:
    import optuna

    from sigforge.runtime.lm import BaseLM  # the name the generated prompt predictors use

__all__ = ["AUTO_RUN_SETTINGS", "TIPS", "MIPROv2"]

#: ``auto`` presets: demo-set (and instruction) candidates ``n``, most valset examples
AUTO_RUN_SETTINGS: dict[str, dict[str, int]] = {
    "light": {"n": 6, "val_size": 100},
    "medium": {"n": 12, "val_size": 300},
    "heavy": {"n": 18, "val_size": 1000},
}

#: the tips the grounded proposer draws from (``tip_aware_proposer``)
TIPS: dict[str, str] = {
    "none": "",
    "creative": "Feel free to be inventive in how the instruction is put.",
    "simple": "Keep the instruction short and clear.",
    "description": "Make the instruction detailed and explicit about the task.",
    "high_stakes": "Frame the task as one where a wrong answer would be costly.",
    "persona": 'Open the instruction with a persona suited to the task ("You are a ...").',
}

_MIN_MINIBATCH_VALSET = 50  # auto: minibatches only for larger valsets
_DEMOS_SHOWN = 3  # demos the proposer sees per proposal
_ZERO_SHOT_BOOTSTRAPPED = 3  # demos bootstrapped to show the proposer when none are kept
_MAX_SUMMARY_CALLS = 10
_MAX_COMPLETE_ANSWERS = 5


@dataclass(frozen=True, slots=True)
class _Params:
    """One trial's choice: an instruction index and a demo-set index per predictor."""

    instructions: tuple[int, ...]
    demos: tuple[int, ...] | None

    def as_record(self, names: Sequence[str]) -> dict[str, dict[str, int]]:
        return {
            name: {
                "instruction": self.instructions[i],
                **({} if self.demos is None else {"demos": self.demos[i]}),
            }
            for i, name in enumerate(names)
        }


class MIPROv2(Optimizer):
    """Instructions and demos optimized together (see the module doc)."""

    def __init__(
        self,
        metric: Metric,
        *,
        auto: Literal["light", "medium", "heavy"] | None = "light",
        num_candidates: int | None = None,
        num_trials: int | None = None,
        max_bootstrapped_demos: int = 4,
        max_labeled_demos: int = 4,
        minibatch: bool = True,
        minibatch_size: int = 35,
        minibatch_full_eval_steps: int = 5,
        prompt_model: BaseLM | None = None,
        init_temperature: float = 1.0,
        metric_threshold: float | None = None,
        max_errors: int | None = None,
        program_aware_proposer: bool = True,
        data_aware_proposer: bool = True,
        tip_aware_proposer: bool = True,
        fewshot_aware_proposer: bool = True,
        view_data_batch_size: int = 10,
        seed: int = 9,
        num_threads: int = 1,
        progress: bool | None = None,
    ) -> None:
        super().__init__(seed=seed, num_threads=num_threads, progress=progress)
        if auto is not None and auto not in AUTO_RUN_SETTINGS:
            raise ValueError(f"auto must be one of {', '.join(AUTO_RUN_SETTINGS)} or None, not {auto!r}")
        if auto is None and (num_candidates is None or num_trials is None):
            raise ValueError("with auto=None, give both num_candidates and num_trials")
        if auto is not None and (num_candidates is not None or num_trials is not None):
            raise ValueError(
                f"auto={auto!r} sets num_candidates and num_trials; give auto=None to set them"
            )
        if num_candidates is not None and num_candidates < 1:
            raise ValueError("num_candidates must be at least 1")
        if num_trials is not None and num_trials < 1:
            raise ValueError("num_trials must be at least 1")
        if max_bootstrapped_demos < 0 or max_labeled_demos < 0:
            raise ValueError("max_bootstrapped_demos and max_labeled_demos must not be negative")
        if minibatch_size < 1 or minibatch_full_eval_steps < 1 or view_data_batch_size < 1:
            raise ValueError(
                "minibatch_size, minibatch_full_eval_steps and view_data_batch_size must be at least 1"
            )
        self.metric = metric
        self.auto = auto
        self.num_candidates = num_candidates
        self.num_trials = num_trials
        self.max_bootstrapped_demos = max_bootstrapped_demos
        self.max_labeled_demos = max_labeled_demos
        self.minibatch = minibatch
        self.minibatch_size = minibatch_size
        self.minibatch_full_eval_steps = minibatch_full_eval_steps
        self.prompt_model = prompt_model
        self.init_temperature = init_temperature
        self.metric_threshold = metric_threshold
        self.max_errors = max_errors
        self.program_aware_proposer = program_aware_proposer
        self.data_aware_proposer = data_aware_proposer
        self.tip_aware_proposer = tip_aware_proposer
        self.fewshot_aware_proposer = fewshot_aware_proposer
        self.view_data_batch_size = view_data_batch_size

    def settings(self) -> dict[str, Any]:
        return {
            "metric": callable_name(self.metric),
            "auto": self.auto,
            "num_candidates": self.num_candidates,
            "num_trials": self.num_trials,
            "max_bootstrapped_demos": self.max_bootstrapped_demos,
            "max_labeled_demos": self.max_labeled_demos,
            "minibatch": self.minibatch,
            "minibatch_size": self.minibatch_size,
            "minibatch_full_eval_steps": self.minibatch_full_eval_steps,
            "prompt_model": None if self.prompt_model is None else self.prompt_model.model,
            "init_temperature": self.init_temperature,
            "metric_threshold": self.metric_threshold,
            "max_errors": self.max_errors,
            "program_aware_proposer": self.program_aware_proposer,
            "data_aware_proposer": self.data_aware_proposer,
            "tip_aware_proposer": self.tip_aware_proposer,
            "fewshot_aware_proposer": self.fewshot_aware_proposer,
            "view_data_batch_size": self.view_data_batch_size,
            **super().settings(),
        }

    @property
    def zero_shot(self) -> bool:
        """Whether only instructions are optimized (no demos are kept)."""
        return self.max_bootstrapped_demos == 0 and self.max_labeled_demos == 0

    def planned(self, predictors: int, valset_size: int) -> dict[str, Any]:
        """What a compile with this many predictors and valset examples will do:
        ``num_trials``, ``minibatch``, the number of instruction and demo-set
        candidates, and the valset size used (``auto`` applied)."""
        if self.auto is None:
            assert self.num_candidates is not None and self.num_trials is not None
            return {
                "num_trials": self.num_trials,
                "minibatch": self.minibatch,
                "instruction_candidates": self.num_candidates,
                "demo_candidates": self.num_candidates,
                "valset_size": valset_size,
            }
        n = AUTO_RUN_SETTINGS[self.auto]["n"]
        size = min(valset_size, AUTO_RUN_SETTINGS[self.auto]["val_size"])
        variables = predictors if self.zero_shot else 2 * predictors
        return {
            "num_trials": int(max(2 * variables * math.log2(n), 1.5 * n)),
            "minibatch": size > _MIN_MINIBATCH_VALSET,
            "instruction_candidates": n if self.zero_shot else int(n * 0.5),
            "demo_candidates": n,
            "valset_size": size,
        }

    # ------------------------------------------------------------ compile
    def compile(
        self,
        student: ProgramT,
        *,
        trainset: Sequence[Example],
        valset: Sequence[Example] | None = None,
        teacher: Program | None = None,
    ) -> ProgramT:
        """The best fully scored program: the student (a copy) with the chosen instruction
        and demo set per predictor; ``student`` is left unchanged."""
        _require_optuna()
        trainset, valset = _split(list(trainset), None if valset is None else list(valset))
        rng = self._rng()
        program = deep_copy(student)
        names = [name for name, _ in program.named_predictors()]
        if not names:
            raise ValueError("the program has no predictors to optimize")
        plan = self.planned(len(names), len(valset))
        if self.auto is not None:
            valset = [valset[i] for i in rng.sample(range(len(valset)), plan["valset_size"])]
        minibatch = bool(plan["minibatch"])
        if minibatch and self.minibatch_size > len(valset):
            raise ValueError(
                f"minibatch_size={self.minibatch_size} is larger than the valset "
                f"({len(valset)} examples): lower it, or pass minibatch=False"
            )
        scorer = Scorer(self.metric, num_threads=self.num_threads, max_errors=self.max_errors)
        with tracked_calls() as usage:
            demo_sets = self._demo_candidates(program, trainset, plan["demo_candidates"], teacher)
            proposer = _GroundedProposal(self, program, trainset, rng)
            instructions = proposer.candidates(demo_sets, plan["instruction_candidates"])
            search = _Search(
                self,
                program,
                names,
                instructions,
                None if self.zero_shot else demo_sets,
                valset,
                scorer,
                rng,
                num_trials=int(plan["num_trials"]),
                minibatch=minibatch,
            )
            best_program, best_score = search.run()
        return self._finish(
            cast(ProgramT, best_program),
            usage,
            trainset=trainset,
            valset=valset,
            scores={"best": best_score, "baseline": search.default_score},
            num_trials=plan["num_trials"],
            minibatch=minibatch,
            metric_calls=scorer.metric_calls,
            trials=search.trials,
            best_params=None if search.best_params is None else search.best_params.as_record(names),
            instruction_candidates={
                name: list(instructions[i]) for i, name in enumerate(names)
            },
            demo_candidates={
                name: [len(demo_set[name]) for demo_set in demo_sets] for name in names
            },
            data_summary=proposer.data_summary,
        )

    # ------------------------------------------------------------ step 1: demo sets
    def _demo_candidates(
        self, program: Program, trainset: list[Example], count: int, teacher: Program | None
    ) -> list[dict[str, list[Demo]]]:
        """``count`` demo sets (each: predictor name -> demos), built as random search's
        candidates ``-3 .. count - 4``."""
        from .labeled import LabeledFewShot
        from .random_search import BootstrapFewShotWithRandomSearch

        bootstrapped = _ZERO_SHOT_BOOTSTRAPPED if self.zero_shot else self.max_bootstrapped_demos
        labeled = 0 if self.zero_shot else self.max_labeled_demos
        builder = BootstrapFewShotWithRandomSearch(
            self.metric,
            max_bootstrapped_demos=max(1, bootstrapped),
            max_labeled_demos=labeled,
            max_errors=self.max_errors,
            metric_threshold=self.metric_threshold,
            seed=self.seed,
            num_threads=self.num_threads,
            progress=False,
        )
        sets: list[dict[str, list[Demo]]] = []
        bar = progress_bar(self.progress, count, f"{self.name}: demo sets")
        try:
            for candidate_seed in range(-3, count - 3):
                if bootstrapped == 0 and candidate_seed >= -1:
                    # labeled demos only: a fresh sample per candidate
                    sample_seed = self.seed * 1_000_003 + candidate_seed
                    built = LabeledFewShot(labeled, seed=sample_seed).label(program, trainset)
                else:
                    built = builder._candidate(
                        program, trainset, teacher, candidate_seed, labeled_sample=True
                    )
                sets.append({name: p.demos for name, p in built.named_predictors()})
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return sets


def _require_optuna() -> None:
    """Fail before any LM call when optuna (step 3) is not installed."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "MIPROv2 needs optuna for its Bayesian search: pip install 'sigforge[optimize]' "
            "(or pip install 'optuna>=4')"
        ) from None


def _split(
    trainset: list[Example], valset: list[Example] | None
) -> tuple[list[Example], list[Example]]:
    """The training and validation sets, as DSPy splits a trainset given alone."""
    if not trainset:
        raise ValueError("MIPROv2 needs a non-empty trainset")
    if valset is not None:
        if not valset:
            raise ValueError("the valset must hold at least one example")
        return trainset, valset
    if len(trainset) < 2:
        raise ValueError("without a valset, the trainset needs at least 2 examples")
    size = min(1000, max(1, int(len(trainset) * 0.8)))
    return trainset[: len(trainset) - size], trainset[len(trainset) - size :]


# ---------------------------------------------------------------- step 2: instructions


class _GroundedProposal:
    """MIPROv2's grounded proposer for one compile (see the module doc, step 2)."""

    def __init__(
        self, owner: MIPROv2, program: Program, trainset: list[Example], rng: random.Random
    ) -> None:
        self.owner = owner
        self.program = program
        self.trainset = trainset
        self.rng = rng
        self.data_summary: str | None = None

    def _config(self, rollout_id: int | None = None) -> dict[str, Any]:
        return proposer_config(
            1.0 if rollout_id is None else self.owner.init_temperature, rollout_id
        )

    def summarize_data(self) -> str:
        """The dataset summary: observations batch by batch, then their summary."""
        from .prompts.mipro import DatasetDescriber, MoreDataDescriber, ObservationSummarizer

        lm, size = self.owner.prompt_model, self.owner.view_data_batch_size

        def batch(start: int) -> list[str]:
            return [example_text(e) for e in self.trainset[start : start + size]]

        observations = (
            DatasetDescriber(lm=lm, config=self._config())(examples=batch(0)).observations
        )
        calls, complete = 0, 0
        for start in range(size, len(self.trainset), size):
            calls += 1
            if calls >= _MAX_SUMMARY_CALLS:
                break
            more = MoreDataDescriber(lm=lm, config=self._config())(
                examples=batch(start), prior_observations=observations
            ).observations
            if more.strip()[:8].upper() == "COMPLETE":
                complete += 1
                if complete >= _MAX_COMPLETE_ANSWERS:
                    break
                continue
            observations = f"{observations}\n{more}"
        summary = ObservationSummarizer(lm=lm, config=self._config())(observations=observations)
        return clean_instruction(summary.summary)

    def describe(self, example: str) -> tuple[str, str, dict[str, str], dict[str, str]]:
        """The program outline, the program's description, and each predictor's call
        (``Class(inputs) -> outputs``) and role."""
        from .prompts.mipro import ModuleDescriber, ProgramDescriber

        lm = self.owner.prompt_model
        code = program_outline(self.program)
        described = ProgramDescriber(lm=lm, config=self._config())(
            program_code=code, program_example=example
        ).program_description
        modules: dict[str, str] = {}
        roles: dict[str, str] = {}
        for name, predictor in self.program.named_predictors():
            sig = predictor.signature
            modules[name] = (
                f"{name} = {type(predictor).__name__}("
                f"{', '.join(f.name for f in sig.input_fields)}) -> "
                f"{', '.join(f.name for f in sig.output_fields)}"
            )
            roles[name] = ModuleDescriber(lm=lm, config=self._config())(
                program_code=code,
                program_example=example,
                program_description=described,
                module=modules[name],
            ).module_description
        return code, described, modules, roles

    @staticmethod
    def task_demos(demo_sets: Sequence[dict[str, list[Demo]]], name: str, index: int) -> str:
        """Up to 3 demos of ``name`` from set ``index``, then the following sets, then the
        earlier ones; "No task demos provided." for set 0 (no demos) or when none."""
        if index == 0:
            return "No task demos provided."
        ordered = [*demo_sets[index:], *demo_sets[:index]]
        shown = [demo for demo_set in ordered for demo in demo_set.get(name, [])][:_DEMOS_SHOWN]
        if not shown:
            return "No task demos provided."
        return "\n\n".join(demo_text(demo) for demo in shown)

    def candidates(
        self, demo_sets: Sequence[dict[str, list[Demo]]], wanted: int
    ) -> list[list[str]]:
        """The instruction candidates of each predictor, in named-predictor order;
        candidate 0 is the instruction in use."""
        from .prompts.mipro import GroundedProposer

        owner = self.owner
        if owner.data_aware_proposer:
            self.data_summary = self.summarize_data()
        names = [name for name, _ in self.program.named_predictors()]
        count = min(wanted, max(len(demo_sets), 1))
        code, described = "Not provided", "Not available"
        modules = roles = dict.fromkeys(names, "Not provided")
        if owner.program_aware_proposer:
            example = (
                self.task_demos(demo_sets, names[0], 1)
                if len(demo_sets) > 1
                else "No task demos provided."
            )
            code, described, modules, roles = self.describe(example)
        current = instructions_of(self.program)
        jobs: list[tuple[str, int, str, int]] = []  # predictor, candidate, tip, rollout id
        for name in names:
            for index in range(count):
                tip = TIPS[self.rng.choice(list(TIPS))] if owner.tip_aware_proposer else ""
                jobs.append((name, index, tip, self.rng.randint(0, 10**9)))
        asked = [job for job in jobs if job[1] > 0]  # candidate 0 is the instruction in use

        def one(position: int) -> str:
            name, index, tip, rollout_id = asked[position]
            demos = (
                self.task_demos(demo_sets, name, index)
                if owner.fewshot_aware_proposer
                else "No task demos provided."
            )
            proposer = GroundedProposer(lm=owner.prompt_model, config=self._config(rollout_id))
            return proposer(
                dataset_description=self.data_summary or "Not available",
                program_code=code,
                program_description=described,
                module=modules[name],
                module_description=roles[name],
                task_demos=demos,
                basic_instruction=current[name],
                tip=tip or "No particular suggestion.",
            ).proposed_instruction

        proposed = iter(run_all(one, len(asked), owner.num_threads))
        found: dict[str, list[str]] = {name: [] for name in names}
        for name, index, _, _ in jobs:
            text = current[name] if index == 0 else clean_instruction(next(proposed))
            found[name].append(text or current[name])
        return [found[name] for name in names]


# ---------------------------------------------------------------- step 3: the search


class _Search:
    """The Bayesian search over (instruction, demo set) per predictor (step 3)."""

    def __init__(
        self,
        owner: MIPROv2,
        program: Program,
        names: list[str],
        instructions: list[list[str]],
        demo_sets: list[dict[str, list[Demo]]] | None,
        valset: list[Example],
        scorer: Scorer,
        rng: random.Random,
        *,
        num_trials: int,
        minibatch: bool,
    ) -> None:
        self.owner = owner
        self.program = program
        self.names = names
        self.instructions = instructions
        self.demo_sets = demo_sets
        self.valset = valset
        self.scorer = scorer
        self.rng = rng
        self.num_trials = num_trials
        self.minibatch = minibatch
        steps = owner.minibatch_full_eval_steps
        extra = 1 if num_trials % steps else 0
        self.adjusted_trials = num_trials + num_trials // steps + 1 + extra if minibatch else num_trials
        #: what the record keeps of every trial
        self.trials: list[dict[str, Any]] = []
        self.default_score = 0.0
        self.best_score = 0.0
        self.best_program: Program = program
        self.best_params: _Params | None = None
        self._minibatch_scores: dict[_Params, list[float]] = {}
        self._fully_scored: set[_Params] = set()

    def _build(self, params: _Params) -> Program:
        chosen = {name: self.instructions[i][params.instructions[i]] for i, name in enumerate(self.names)}
        demos = None
        if self.demo_sets is not None and params.demos is not None:
            demos = {name: self.demo_sets[params.demos[i]][name] for i, name in enumerate(self.names)}
        return with_instructions(self.program, chosen, demos)

    def _distributions(self) -> dict[str, Any]:
        import optuna

        found: dict[str, Any] = {}
        for i in range(len(self.names)):
            found[f"{i}_predictor_instruction"] = optuna.distributions.CategoricalDistribution(
                list(range(len(self.instructions[i])))
            )
            if self.demo_sets is not None:
                found[f"{i}_predictor_demos"] = optuna.distributions.CategoricalDistribution(
                    list(range(len(self.demo_sets)))
                )
        return found

    def _optuna_params(self, params: _Params) -> dict[str, int]:
        found = {f"{i}_predictor_instruction": v for i, v in enumerate(params.instructions)}
        if params.demos is not None:
            found.update({f"{i}_predictor_demos": v for i, v in enumerate(params.demos)})
        return found

    def run(self) -> tuple[Program, float]:
        """Score the student, run the trials, and return the best fully scored program."""
        import optuna

        size = len(self.names)
        default = _Params((0,) * size, None if self.demo_sets is None else (0,) * size)
        self.default_score = self.best_score = self.scorer.score(self.program, self.valset)
        self.trials.append(
            {"trial": 1, "kind": "full", "params": "student", "score": self.default_score}
        )
        bar = progress_bar(self.owner.progress, self.adjusted_trials, f"{self.owner.name}: trials")
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(seed=self.owner.seed, multivariate=True)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.add_trial(
                optuna.trial.create_trial(
                    params=self._optuna_params(default),
                    distributions=self._distributions(),
                    value=self.default_score,
                )
            )
            if bar is not None:
                bar.update(1)

            def objective(trial: optuna.trial.Trial) -> float:
                score = self._trial(study, trial)
                if bar is not None:
                    bar.update(1)
                return score

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.optimize(objective, n_trials=self.num_trials)
        finally:
            optuna.logging.set_verbosity(verbosity)
            if bar is not None:
                bar.close()
        return self.best_program, self.best_score

    def _trial(self, study: optuna.Study, trial: optuna.trial.Trial) -> float:
        number = trial.number + 1
        instructions = tuple(
            int(
                trial.suggest_categorical(
                    f"{i}_predictor_instruction", list(range(len(self.instructions[i])))
                )
            )
            for i in range(len(self.names))
        )
        demos = None
        if self.demo_sets is not None:
            demos = tuple(
                int(trial.suggest_categorical(f"{i}_predictor_demos", list(range(len(self.demo_sets)))))
                for i in range(len(self.names))
            )
        params = _Params(instructions, demos)
        candidate = self._build(params)
        if self.minibatch:
            size = min(self.owner.minibatch_size, len(self.valset))
            batch = [self.valset[i] for i in self.rng.sample(range(len(self.valset)), size)]
        else:
            batch = self.valset
        score = self.scorer.score(candidate, batch)
        self.trials.append(
            {
                "trial": number,
                "kind": "minibatch" if self.minibatch else "full",
                "params": params.as_record(self.names),
                "score": score,
            }
        )
        if not self.minibatch and score > self.best_score:
            self.best_score, self.best_program, self.best_params = score, candidate, params
        self._minibatch_scores.setdefault(params, []).append(score)
        steps = self.owner.minibatch_full_eval_steps
        if self.minibatch and (number % (steps + 1) == 0 or number == self.adjusted_trials - 1):
            self._full_evaluation(study, number)
        return score

    def _full_evaluation(self, study: optuna.Study, number: int) -> None:
        """Score the best combination by mean minibatch score not yet fully scored, on the
        whole valset, and tell the sampler."""
        import optuna

        waiting = [
            (mean(scores), params)
            for params, scores in self._minibatch_scores.items()
            if params not in self._fully_scored
        ]
        if not waiting:
            return
        minibatch_mean, params = max(waiting, key=lambda item: item[0])
        candidate = self._build(params)
        score = self.scorer.score(candidate, self.valset)
        self._fully_scored.add(params)
        study.add_trial(
            optuna.trial.create_trial(
                params=self._optuna_params(params),
                distributions=self._distributions(),
                value=score,
            )
        )
        self.trials.append(
            {
                "trial": number + 1,
                "kind": "full",
                "params": params.as_record(self.names),
                "score": score,
                "minibatch_mean": minibatch_mean,
            }
        )
        if score > self.best_score:
            self.best_score, self.best_program, self.best_params = score, candidate, params
