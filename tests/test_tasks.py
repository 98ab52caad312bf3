"""The operator task world: an LM whose answers depend only on what its prompt contains."""

from __future__ import annotations

from types import ModuleType

import pytest
from support import generate_package, import_generated

from sigforge.runtime import LM
from sigforge.testing import OpenAICompatServer
from sigforge.testing.tasks import (
    OPERATIONS,
    Observation,
    OperatorTask,
    OperatorWorld,
    SolveAndCheck,
    apply_operation,
    find_definitions,
    find_observations,
    infer_meanings,
    task_module,
)

PROPOSER_SIG = '''\
signature ProposeInstruction {
    """
    Write a better instruction for the task, from the examples.
    """
    in  basic_instruction:    str       "The instruction the model follows now"
    in  task_examples:        list[str] "Examples of the task with the expected answers"
    out proposed_instruction: str       "The new instruction"
}

signature Reflect {
    """
    Write a new instruction from the feedback.
    """
    in  current_instruction:    str       "The instruction the assistant followed"
    in  examples_with_feedback: list[str] "Inputs, outputs and feedback"
    out new_instruction:        str       "The new instruction"
}

signature Summarize {
    """
    Summarize the examples.
    """
    in  examples: list[str] "Examples from the dataset"
    out summary:  str       "A short summary"
}

predictor Proposer = predict(ProposeInstruction)
predictor ProposerCoT = chain_of_thought(ProposeInstruction)
predictor Reflector = predict(Reflect)
predictor Summarizer = predict(Summarize)
'''


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return task_module()


@pytest.fixture(scope="module")
def proposers(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    src = tmp_path_factory.mktemp("proposer_src")
    (src / "proposers.sig").write_text(PROPOSER_SIG, encoding="utf-8")
    generate_package(src, tmp_path_factory.mktemp("pkg"), "tasks_test_generated")
    return import_generated("tasks_test_generated", "proposers")


@pytest.fixture
def task() -> OperatorTask:
    return OperatorTask(seed=0)


def word_with(task: OperatorTask, operation: str | None = None) -> str:
    return next(w for w, op in sorted(task.meanings.items()) if operation in (None, op))


# ---------------------------------------------------------------- the task


def test_task_is_seeded_disjoint_and_never_hides_plus() -> None:
    task = OperatorTask(seed=3)
    assert OperatorTask(seed=3).trainset(30) == task.trainset(30)
    assert OperatorTask(seed=4).trainset(30) != task.trainset(30)
    train, dev = task.trainset(100), task.devset(100)
    assert not {e.inputs["question"] for e in train} & {e.inputs["question"] for e in dev}
    assert len(set(task.meanings.values())) == len(task.meanings) == 4
    assert "plus" not in task.meanings.values()
    for example in train:
        left, word, right = example.inputs["question"][len("What is ") : -1].split()
        assert example["answer"] == apply_operation(task.meanings[word], int(left), int(right))
    assert {e.id for e in dev[:2]} == {"dev-0", "dev-1"}
    with pytest.raises(ValueError, match="between 0 and"):
        task.trainset(task.size + 1)


def test_metric_scores_with_feedback(task: OperatorTask, gen: ModuleType) -> None:
    example = task.trainset(1)[0]
    right = gen.SolveOperatorOutputs(answer=example["answer"])
    wrong = gen.SolveOperatorOutputs(answer=example["answer"] + 1)
    left, word, right_operand = example.inputs["question"][len("What is ") : -1].split()
    assert task.metric(example, right).value == 1.0
    assert task.metric(example, right).feedback == (
        f"correct: {left} {word} {right_operand} = {example['answer']}"
    )
    score = task.metric(example, wrong)
    assert score.value == 0.0
    assert score.feedback == (
        f"expected {example['answer']}, got {example['answer'] + 1} for {left} {word} {right_operand}"
    )
    # the feedback is evidence the proposer can read
    assert find_observations(score.feedback) == [
        Observation(word, int(left), int(right_operand), example["answer"])
    ]


# ---------------------------------------------------------------- the inference engine


def test_engine_needs_exactly_one_fitting_operation() -> None:
    # 7 and 3 tell every operation apart
    assert infer_meanings({}, [Observation("zorp", 7, 3, 4)]) == {"zorp": ("minus", "evidence")}
    # 4 minus 2 = 2 = 4 min 2: ambiguous, so unknown
    assert infer_meanings({}, [Observation("zorp", 4, 2, 2)]) == {}
    # a second observation settles it
    assert infer_meanings({}, [Observation("zorp", 4, 2, 2), Observation("zorp", 9, 5, 4)]) == {
        "zorp": ("minus", "evidence")
    }
    # no operation fits, or two observations disagree: unknown
    assert infer_meanings({}, [Observation("zorp", 7, 3, 5)]) == {}
    assert infer_meanings({}, [Observation("zorp", 7, 3, 4), Observation("zorp", 7, 3, 21)]) == {}
    # evidence wins over a definition; a definition covers what evidence leaves open
    assert infer_meanings(
        {"zorp": "times", "blick": "max"}, [Observation("zorp", 7, 3, 4)]
    ) == {"zorp": ("minus", "evidence"), "blick": ("max", "definition")}
    # real operation names are never reinterpreted
    assert infer_meanings({}, [Observation("plus", 7, 3, 4)]) == {}


def test_definitions_and_observations_in_free_text() -> None:
    assert find_definitions(
        "Zorp means subtraction. BLICK stands for the product; quen = maximum; fex is concat-digits. "
        "What is 7 zorp 3? The answer is 4. plus means times."
    ) == {"zorp": "minus", "blick": "times", "quen": "max", "fex": "concat"}
    text = (
        '["question: What is 3 zorp 4?\\nanswer: 7", "What is 2 blick 9? [[ ## answer ## ]]\\n18", '
        '"{\\"question\\": \\"What is 5 quen 1?\\", \\"answer\\": 5}", '
        '"What is 6 fex 2? answer: 8 -- expected 62, got 8 for 6 fex 2", "8 drab 2 = 4"]'
    )
    assert sorted(find_observations(text), key=lambda o: o.word) == [
        Observation("blick", 2, 9, 18),
        Observation("drab", 8, 2, 4),
        Observation("fex", 6, 2, 62),
        Observation("quen", 5, 1, 5),
        Observation("zorp", 3, 4, 7),
    ]


# ---------------------------------------------------------------- the solver


def test_answers_wrong_without_help(task: OperatorTask, gen: ModuleType) -> None:
    world = OperatorWorld()
    solve = gen.Solve(lm=world.lm())
    for example in task.devset(20):
        out = solve(question=example.inputs["question"])
        left, _, right = example.inputs["question"][len("What is ") : -1].split()
        assert out.answer == int(left) + int(right) != example["answer"]  # read as plus
    assert world.calls == {"solver": 20, "proposer": 0, "other": 0}


def test_answers_right_with_a_defining_instruction(task: OperatorTask, gen: ModuleType) -> None:
    lm = OperatorWorld().lm()
    word = word_with(task)
    full = gen.Solve(lm=lm, instructions=task.instructions())
    one = gen.Solve(lm=lm, instructions=f"Answer it. {word.upper()} means {task.meanings[word]}.")
    for example in task.devset(30):
        assert full(question=example.inputs["question"]).answer == example["answer"]
        knows = f" {word} " in example.inputs["question"]
        assert (one(question=example.inputs["question"]).answer == example["answer"]) == knows


def test_demos_teach_when_consistent_and_not_otherwise(task: OperatorTask, gen: ModuleType) -> None:
    lm = OperatorWorld().lm()
    word = word_with(task)
    meaning = task.meanings[word]
    question = f"What is 8 {word} 5?"
    gold = apply_operation(meaning, 8, 5)
    consistent = [{"question": f"What is 7 {word} 3?", "answer": apply_operation(meaning, 7, 3)}]
    assert gen.Solve(lm=lm, demos=consistent)(question=question).answer == gold
    inconsistent = [{"question": f"What is 7 {word} 3?", "answer": 5}]  # no operation gives 5
    assert gen.Solve(lm=lm, demos=inconsistent)(question=question).answer == 13  # plus
    disagreeing = [*consistent, {"question": f"What is 7 {word} 3?", "answer": 99}]
    assert gen.Solve(lm=lm, demos=disagreeing)(question=question).answer == 13
    other_word = [{"question": "What is 7 unrelated 3?", "answer": 21}]
    assert gen.Solve(lm=lm, demos=other_word)(question=question).answer == 13


def test_learned_meanings_hold_across_the_devset(task: OperatorTask, gen: ModuleType) -> None:
    lm = OperatorWorld().lm()
    demos = [e.to_dict() for e in task.trainset(16)]
    solve = gen.Solve(lm=lm, demos=demos)
    dev = task.devset(40)
    assert all(solve(question=e.inputs["question"]).answer == e["answer"] for e in dev)


def test_chain_of_thought_and_json_adapter(task: OperatorTask, gen: ModuleType) -> None:
    world = OperatorWorld()
    lm = world.lm()
    word = word_with(task)
    example = next(e for e in task.devset(50) if f" {word} " in e.inputs["question"])
    cot = gen.SolveStepByStep(lm=lm, instructions=task.instructions([word]))
    out = cot(question=example.inputs["question"])
    assert out.answer == example["answer"]
    assert out.reasoning.startswith(f"{word} means {task.meanings[word]} (as instructed)")
    assert lm.requests[-1].messages[-1]["content"].endswith("`[[ ## completed ## ]]`.")
    assert "[[ ## reasoning ## ]]" in world.responder(lm.requests[-1])
    demos = [e.to_dict() for e in task.trainset(16)]
    as_json = gen.Solve(lm=lm, adapter="json", demos=demos)
    assert as_json(question=example.inputs["question"]).answer == example["answer"]
    assert lm.requests[-1].params["response_format"]["type"] == "json_schema"
    assert world.responder(lm.requests[-1]) == f'{{"answer": {example["answer"]}}}'
    # JSON demos (assistant turns as JSON objects) teach as well as chat ones
    assert '"answer": ' in lm.requests[-1].messages[2]["content"]


def test_two_predictor_module_learns_per_predictor(task: OperatorTask) -> None:
    lm = OperatorWorld().lm()
    program = SolveAndCheck(lm=lm)
    assert [name for name, _ in program.named_predictors()] == ["solve", "check"]
    example = task.devset(1)[0]
    assert program(question=example.inputs["question"]).answer != example["answer"]
    # the check step decides: demos on `solve` alone do not fix the final answer
    program.solve.demos = [e.to_dict() for e in task.trainset(16)]
    assert program(question=example.inputs["question"]).answer != example["answer"]
    program.check.demos = [
        {**e.to_dict(), "proposed": e["answer"]} for e in task.trainset(16)
    ]
    assert program(question=example.inputs["question"]).answer == example["answer"]


# ---------------------------------------------------------------- the proposer


def examples_text(task: OperatorTask, n: int) -> list[str]:
    return [f"question: {e.inputs['question']}\nanswer: {e['answer']}" for e in task.trainset(n)]


def test_proposer_infers_from_examples_and_varies_with_rollouts(
    task: OperatorTask, gen: ModuleType, proposers: ModuleType
) -> None:
    world = OperatorWorld()
    lm = world.lm()
    examples = examples_text(task, 24)
    proposals = []
    for rollout in range(12):
        propose = proposers.Proposer(lm=lm, config={"rollout_id": rollout, "temperature": 1.0})
        out = propose(basic_instruction="Answer the question.", task_examples=examples)
        proposals.append(out.proposed_instruction)
        defined = find_definitions(out.proposed_instruction)
        assert defined.items() <= task.meanings.items()  # only what is true
    assert world.calls["proposer"] == 12
    assert len(set(proposals)) > 3  # candidates differ...
    assert set().union(*(find_definitions(p) for p in proposals)) == set(task.meanings)
    # ... reproducibly: the same prompt, rollout and temperature give the same instruction
    again = proposers.Proposer(lm=lm, config={"rollout_id": 3, "temperature": 1.0})
    assert again(basic_instruction="Answer the question.", task_examples=examples)\
        .proposed_instruction == proposals[3]
    # a proposal is an instruction the solver follows
    best = max(proposals, key=lambda p: len(find_definitions(p)))
    solve = gen.Solve(lm=lm, instructions=best)
    for example in task.devset(20):
        _, word, _ = example.inputs["question"][len("What is ") : -1].split()
        right = solve(question=example.inputs["question"]).answer == example["answer"]
        assert right == (word in find_definitions(best))


def test_proposer_reads_feedback_and_corrects_a_wrong_instruction(
    task: OperatorTask, gen: ModuleType, proposers: ModuleType
) -> None:
    world = OperatorWorld(keep_probability=1.0)
    lm = world.lm()
    word = word_with(task)
    wrong = "times" if task.meanings[word] != "times" else "max"
    solve = gen.Solve(lm=lm, instructions=f"{word} means {wrong}.")
    records = []
    for example in task.trainset(30):
        out = solve(question=example.inputs["question"])
        score = task.metric(example, out)
        records.append(
            f"inputs: {example.inputs['question']}\noutputs: answer: {out.answer}\n"
            f"feedback: {score.feedback}"
        )
    reflect = proposers.Reflector(lm=lm)
    new = reflect(
        current_instruction=f"{word} means {wrong}.", examples_with_feedback=records
    ).new_instruction
    assert find_definitions(new) == task.meanings  # keep_probability=1: everything it inferred
    better = gen.Solve(lm=lm, instructions=new)
    assert all(
        better(question=e.inputs["question"]).answer == e["answer"] for e in task.devset(20)
    )


def test_proposer_chain_of_thought_and_other_roles(
    task: OperatorTask, proposers: ModuleType
) -> None:
    world = OperatorWorld()
    lm = world.lm()
    out = proposers.ProposerCoT(lm=lm)(
        basic_instruction="Answer.", task_examples=examples_text(task, 12)
    )
    assert out.reasoning.startswith("The examples show")
    assert out.proposed_instruction.startswith("Answer the arithmetic question.")
    summary = proposers.Summarizer(lm=lm)(examples=examples_text(task, 3)).summary
    assert summary == "Nothing to add."
    assert world.calls == {"solver": 0, "proposer": 1, "other": 1}
    assert world.role_of(lm.requests[0]) == "proposer"
    assert world.role_of(lm.requests[1]) == "other"


# ---------------------------------------------------------------- over HTTP


def test_the_same_world_serves_http(task: OperatorTask, gen: ModuleType) -> None:
    world = OperatorWorld()
    with OpenAICompatServer(world.responder, max_lifetime=60) as server:
        lm = LM("openai/operator", base_url=server.base_url, api_key="sk-test", cache=False)
        try:
            plain = gen.Solve(lm=lm)
            taught = gen.SolveStepByStep(lm=lm, instructions=task.instructions())
            as_json = gen.Solve(lm=lm, adapter="json", demos=[e.to_dict() for e in task.trainset(16)])
            for example in task.devset(6):
                question = example.inputs["question"]
                assert plain(question=question).answer != example["answer"]
                assert taught(question=question).answer == example["answer"]
                assert as_json(question=question).answer == example["answer"]
        finally:
            lm.close()
    assert server.violations == []
    assert world.calls == {"solver": 18, "proposer": 0, "other": 0}
    assert len(server.requests) == 18


def test_operations_table_is_what_the_docs_say() -> None:
    assert set(OPERATIONS) == {"plus", "minus", "times", "max", "min", "concat"}
    assert apply_operation("concat", 7, 3) == 73
    assert OperatorWorld(keep_probability=0.0).calls == {"solver": 0, "proposer": 0, "other": 0}
    with pytest.raises(ValueError):
        OperatorWorld(keep_probability=2.0)
