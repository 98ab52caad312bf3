"""The prompt of GEPA's reflection step: a new instruction from the feedback on a minibatch."""

signature ReflectOnFeedback {
    """
    I gave an assistant the instruction below for a task. You are shown examples of the
    task: the inputs the assistant got, what it answered, and feedback on the answer.
    Write a new instruction for the assistant.
    Read the inputs to learn their format and what the task really asks. Read every answer
    with its feedback: collect each specific fact, rule or definition the feedback reveals
    and write it into the instruction, since the assistant will not see this feedback
    later. Keep any general strategy that worked.
    """
    in  current_instruction: str "The instruction the assistant followed"
    in  examples_with_feedback: str "Examples: the inputs, the assistant's outputs and the feedback on them"
    out new_instruction:     str "The new instruction for the assistant"
}

predictor Reflector = predict(ReflectOnFeedback)
