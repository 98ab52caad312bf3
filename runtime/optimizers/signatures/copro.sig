"""The prompts COPRO sends: propose instructions, first from scratch, then from scored attempts."""

signature ProposeInstruction {
    """
    You write instructions for a language model. You are shown the instructions it
    follows now and a few examples of the task, each with the expected answer.
    Write a better instruction: one that would lead a capable language model to do this
    task well. Work out from the examples anything the current instruction leaves out,
    and state it plainly. Feel free to be inventive.
    """
    in  basic_instruction:    str "The instruction the model follows now"
    in  task_examples:        str "Examples of the task: inputs and the expected outputs"
    out proposed_instruction: str "The new instruction for the language model"
}

signature ProposeInstructionFromAttempts {
    """
    You write instructions for a language model. You are shown instructions that were
    tried, each with the score the model reached when following it on a validation set
    (higher is better), listed from the lowest score to the highest, and a few examples
    of the task with the expected answers.
    Write a new instruction that would score higher still: keep what the best attempts
    got right, add what they miss. Feel free to be inventive.
    """
    in  attempted_instructions: list[str] "Instructions tried so far with their scores, lowest score first"
    in  task_examples:        str "Examples of the task: inputs and the expected outputs"
    out proposed_instruction: str "The new instruction for the language model"
}

predictor InstructionProposer = predict(ProposeInstruction)
predictor AttemptsProposer = predict(ProposeInstructionFromAttempts)
