"""best_of_n, refine and multi_chain_comparison over a scripted LM that reads its prompts.

The LM never sees an answer key: it counts the letters of the word it is given, sloppily
(off by an amount that depends on the request's rollout id) unless the prompt carries
advice (``hint_``), and the comparison answers with the prediction most attempts share.
Only the reward functions, which play the evaluator, know the right count.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support import generate_package, import_generated

from sigforge.runtime import LMRequest, OutputParseError
from sigforge.runtime.modules import AttemptsFailedError, BestOfN, MultiChainComparison, Refine
from sigforge.runtime.trace import recording
from sigforge.testing import ScriptedLM

SOURCE = '''"""Letter counting, sampled."""

signature Count {
    """Count the letters of the word."""
    in  word:  str "A word"
    out count: int "How many letters it has"
}

predictor Best = best_of_n(Count, n=4)
predictor BestThinking = best_of_n(Count, n=3, module="chain_of_thought")
predictor Refined = refine(Count, n=3)
predictor Judge = multi_chain_comparison(Count, m=3)
'''


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    root = tmp_path_factory.mktemp("sampling")
    (root / "src").mkdir()
    (root / "src" / "counting.sig").write_text(SOURCE, encoding="utf-8")
    generate_package(root / "src", root, "kinds_sampling")
    return import_generated("kinds_sampling", "counting")


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"\[\[ ## (\w+) ## \]\]\n", text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def reply(**fields: object) -> str:
    body = "\n\n".join(f"[[ ## {name} ## ]]\n{value}" for name, value in fields.items())
    return body + "\n\n[[ ## completed ## ]]"


def system_of(request: LMRequest) -> str:
    return str(request.messages[0]["content"])


def user_of(request: LMRequest) -> dict[str, str]:
    """The input sections of the final user message (without the closing request)."""
    return sections(str(request.messages[-1]["content"]).split("\n\nRespond with")[0])


class Counter_:
    """The scripted LM's behaviour (see the module docstring); ``sloppy`` maps a rollout id
    to how far off the count is without advice; rollouts not listed are exact."""

    def __init__(self, sloppy: dict[int | str | None, int], garbage: frozenset[int] = frozenset()) -> None:
        self.sloppy = sloppy
        self.garbage = garbage

    def __call__(self, request: LMRequest) -> str:
        system, user = system_of(request), user_of(request)
        if "`advice`" in system:  # the feedback predictor reads the attempt it is shown
            word = json.loads(user["program_inputs"])["word"]
            got = json.loads(user["program_outputs"])["count"]
            return reply(
                discussion=f"The count {got} is wrong for {word!r}.",
                advice=f"Spell {word!r} out one letter at a time and count each letter.",
            )
        if "rationale" in system:  # the comparison: the prediction most attempts share
            predictions = [
                re.search(r"my prediction is (\d+)»", user[f"reasoning_attempt_{i}"]) for i in (1, 2, 3)
            ]
            votes = Counter(int(m.group(1)) for m in predictions if m)
            best, _ = votes.most_common(1)[0]
            return reply(rationale=f"{votes[best]} of 3 attempts say {best}.", count=best)
        if request.rollout_id in self.garbage:
            return "I would rather not say."
        word = user["word"]
        if "hint_" in user and "one letter at a time" in user["hint_"]:
            count = len(word)
        else:
            count = len(word) + self.sloppy.get(request.rollout_id, 0)
        if "reasoning" in system.split("Your output fields are:")[1]:
            return reply(reasoning=f"I think {word} has {count} letters.\nSecond line.", count=count)
        return reply(count=count)


def exact(word_length: int) -> Callable[[Any, Any], float]:
    return lambda inputs, outputs: 1.0 if outputs.count == word_length else 0.0


def closeness(inputs: Any, outputs: Any) -> float:
    return -abs(outputs.count - len(inputs.word))


def test_best_of_n_samples_distinct_rollouts_until_one_reaches_the_threshold(kinds: ModuleType) -> None:
    lm = ScriptedLM(Counter_({0: 3, 1: -2}))
    best = kinds.Best(reward_fn=exact(6), threshold=1.0, lm=lm)
    assert isinstance(best, BestOfN)
    out = best(word="banana")
    assert out == kinds.CountOutputs(count=6)
    assert [r.rollout_id for r in lm.requests] == [0, 1, 2]  # the third attempt reached it
    assert {r.params["temperature"] for r in lm.requests} == {1.0}
    assert "rollout_id" not in lm.requests[0].params  # never sent to the provider
    assert [n for n, _ in best.named_predictors()] == ["attempt"]


def test_best_of_n_returns_the_best_when_none_reaches_the_threshold(kinds: ModuleType) -> None:
    lm = ScriptedLM(Counter_({0: 4, 1: -3, 2: 1, 3: 2}))
    best = kinds.Best(reward_fn=closeness, threshold=0.0, lm=lm)
    assert best(word="kiwi").count == 5  # off by one: the closest of the four
    assert [r.rollout_id for r in lm.requests] == [0, 1, 2, 3]


def test_rollout_ids_start_at_the_predictors_own(kinds: ModuleType) -> None:
    lm = ScriptedLM(Counter_({10: 1, 11: 1}))
    best = kinds.Best(reward_fn=exact(4), threshold=1.0, n=3, lm=lm)
    best.attempt.config["rollout_id"] = 10
    assert best(word="pear").count == 4
    assert [r.rollout_id for r in lm.requests] == [10, 11, 12]


def test_chain_of_thought_attempts_carry_reasoning(kinds: ModuleType) -> None:
    lm = ScriptedLM(Counter_({0: 1}))
    best = kinds.BestThinking(reward_fn=exact(5), threshold=1.0, lm=lm)
    out = best(word="apple")
    assert isinstance(out, kinds.CountWithReasoningOutputs)
    assert (out.count, out.reasoning.splitlines()[0]) == (5, "I think apple has 5 letters.")


def test_failed_attempts_count_against_fail_count(kinds: ModuleType) -> None:
    # a reply without structure fails once in the chat format and once in JSON
    lm = ScriptedLM(Counter_({}, garbage=frozenset({0, 1})))
    tolerant = kinds.Best(reward_fn=exact(4), threshold=1.0, lm=lm)
    assert tolerant(word="plum").count == 4
    assert [r.rollout_id for r in lm.requests] == [0, 0, 1, 1, 2]
    strict = kinds.Best(reward_fn=exact(4), threshold=1.0, fail_count=1, lm=ScriptedLM(Counter_({}, garbage=frozenset({0, 1}))))
    with pytest.raises(OutputParseError):
        strict(word="plum")
    hopeless = kinds.Best(reward_fn=exact(4), threshold=1.0, lm=ScriptedLM(Counter_({}, garbage=frozenset(range(4)))))
    with pytest.raises(AttemptsFailedError) as caught:
        hopeless(word="plum")
    assert len(caught.value.errors) == 4
    assert "all 4 attempts failed" in str(caught.value)


def test_a_failing_reward_function_is_not_an_attempt_failure(kinds: ModuleType) -> None:
    def broken(inputs: Any, outputs: Any) -> float:
        raise ZeroDivisionError("bug in the metric")

    best = kinds.Best(reward_fn=broken, threshold=1.0, lm=ScriptedLM(Counter_({})))
    with pytest.raises(ZeroDivisionError):
        best(word="fig")


def test_refine_feeds_advice_to_the_next_attempt(kinds: ModuleType) -> None:
    lm = ScriptedLM(Counter_({0: 2, 1: 2, 2: 2}))

    def reward(inputs: Any, outputs: Any) -> float:
        return 1.0 if outputs.count == len("cherry") else 0.0

    refined = kinds.Refined(reward_fn=reward, threshold=1.0, lm=lm)
    assert isinstance(refined, Refine)
    out = refined(word="cherry")
    assert out == kinds.CountOutputs(count=6)
    first, feedback, second = lm.requests
    assert (first.rollout_id, feedback.rollout_id, second.rollout_id) == (0, None, 1)
    shown = user_of(feedback)
    assert json.loads(shown["program_inputs"]) == {"word": "cherry"}
    assert json.loads(shown["program_outputs"]) == {"count": 8}
    assert "outputs.count == len(\"cherry\")" in shown["reward_code"]  # the reward's source
    assert (shown["target_threshold"], shown["reward_value"]) == ("1.0", "0.0")
    assert "Instructions: Count the letters of the word." in shown["module_definition"]
    assert "`count` (int): How many letters it has" in shown["module_definition"]
    hinted = user_of(second)
    assert hinted["hint_"] == "Spell 'cherry' out one letter at a time and count each letter."
    assert "`hint_` (str): Advice from an earlier attempt" in system_of(second)
    assert [n for n, _ in refined.named_predictors()] == ["attempt", "feedback"]


def test_refine_asks_for_no_advice_after_the_last_attempt(kinds: ModuleType) -> None:
    lm = ScriptedLM(Counter_({0: 1, 1: 1}))
    # the advice cannot help: the threshold is out of reach, so all attempts run
    refined = kinds.Refined(reward_fn=closeness, threshold=1.0, lm=lm)
    assert refined(word="lime").count == 4  # the hinted attempts count exactly: the best
    kinds_of = ["feedback" if "`advice`" in system_of(r) else "attempt" for r in lm.requests]
    assert kinds_of == ["attempt", "feedback", "attempt", "feedback", "attempt"]


def test_only_the_chosen_attempt_is_recorded_without_its_hint(kinds: ModuleType) -> None:
    lm = ScriptedLM(Counter_({0: 2}))
    refined = kinds.Refined(reward_fn=exact(5), threshold=1.0, lm=lm)
    with recording() as steps:
        refined(word="mango")
    assert len(steps) == 1
    (step,) = steps
    assert step.predictor is refined.attempt
    assert step.inputs == kinds.CountInputs(word="mango")
    assert step.outputs == kinds.CountOutputs(count=5)


def test_refine_state_round_trips_and_copies_are_independent(kinds: ModuleType, tmp_path: Path) -> None:
    refined = kinds.Refined(reward_fn=exact(3), threshold=1.0)
    refined.attempt.instructions = "Count carefully."
    refined.attempt.demos = [refined.attempt.make_demo(kinds.CountInputs(word="ab"), kinds.CountOutputs(count=2))]
    path = tmp_path / "refined.json"
    refined.save(path)
    fresh = kinds.Refined(reward_fn=exact(3), threshold=1.0)
    fresh.load(path)
    assert fresh.attempt.instructions == "Count carefully."
    assert fresh.attempt.demos == refined.attempt.demos
    copy = refined.deepcopy()
    copy.attempt.instructions = "Other."
    assert refined.attempt.instructions == "Count carefully."
    assert copy.reward_fn is refined.reward_fn
    # the hinted attempt runs with the attempt predictor's instructions and demos
    lm = ScriptedLM(Counter_({0: 1}))
    fresh.attempt.lm = lm
    fresh.feedback.lm = lm
    assert fresh(word="fig").count == 3
    assert "Count carefully." in system_of(lm.requests[-1])
    assert "[[ ## word ## ]]\nab" in str(lm.requests[-1].messages[1]["content"])  # the demo


def test_multi_chain_comparison_compares_distinct_attempts(kinds: ModuleType) -> None:
    lm = ScriptedLM(Counter_({0: 1, 1: 0, 2: 0}))
    judge = kinds.Judge(lm=lm)
    assert isinstance(judge, MultiChainComparison)
    out = judge(word="grape")
    assert out == kinds.JudgeCompareOutputs(rationale="2 of 3 attempts say 5.", count=5)
    attempts, compare = lm.requests[:3], lm.requests[3]
    assert [r.rollout_id for r in attempts] == [0, 1, 2]
    assert {r.params["temperature"] for r in attempts} == {1.0}
    assert compare.rollout_id is None and compare.params["temperature"] == 0.7
    shown = user_of(compare)
    assert shown["reasoning_attempt_1"] == "«I'm trying to I think grape has 6 letters. I'm not sure but my prediction is 6»"
    assert shown["reasoning_attempt_2"] == "«I'm trying to I think grape has 5 letters. I'm not sure but my prediction is 5»"
    system = system_of(compare)
    assert "`reasoning_attempt_3` (str): ${reasoning attempt}" in system
    assert [n for n, _ in judge.named_predictors()] == ["attempt", "compare"]


def test_async_calls_take_the_same_steps(kinds: ModuleType) -> None:
    async def main() -> tuple[Any, Any, ScriptedLM, ScriptedLM]:
        lm_best, lm_judge = ScriptedLM(Counter_({0: 1})), ScriptedLM(Counter_({0: 2, 1: 2, 2: 0}))
        best = kinds.Best(reward_fn=exact(4), threshold=1.0, lm=lm_best)
        judge = kinds.Judge(lm=lm_judge)
        return await best.acall(word="pear"), await judge.acall(word="pear"), lm_best, lm_judge

    best_out, judge_out, lm_best, lm_judge = asyncio.run(main())
    assert best_out.count == 4 and [r.rollout_id for r in lm_best.requests] == [0, 1]
    assert judge_out.count == 6 and len(lm_judge.requests) == 4


def test_generated_signatures_keep_the_instructions_and_share_models(kinds: ModuleType) -> None:
    from sigforge.runtime.adapters import adapter_for

    for sig in (kinds.JudgeCompare, kinds.RefinedHinted, kinds.RefinedFeedback, kinds.CountWithReasoning):
        assert set(sig.prompts) == {"chat"}  # (no predictor here runs the JSON adapter)
        for name, parts in sig.prompts.items():
            assert parts == adapter_for(name).prompts(sig.input_fields, sig.output_fields, sig.instructions)
    assert kinds.JudgeCompare.instructions == kinds.RefinedHinted.instructions == kinds.Count.instructions
    # the hinted attempt returns the attempt's own outputs model, so the reward function fits both
    assert kinds.RefinedHinted.outputs is kinds.CountOutputs
    assert [f.name for f in kinds.RefinedHinted.input_fields] == ["word", "hint_"]
    compare = {f.name: f for f in kinds.JudgeCompare.input_fields}
    assert compare["reasoning_attempt_2"].prefix == "Student Attempt #2:"
    assert kinds.JudgeCompare.output_fields[0].prefix == (
        "Accurate Reasoning: Thank you everyone. Let's now holistically"
    )
