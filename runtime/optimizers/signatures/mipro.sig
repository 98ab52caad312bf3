"""The prompts of MIPROv2's grounded proposer: describe the data and the program, then propose."""

signature DescribeDataset {
    """
    Below are a few examples drawn from a dataset. Write down observations that hold for
    most or all of them: their topic, content, form, length, and anything else that
    stands out. Guess what task the dataset is meant for.
    """
    in  examples:     list[str] "Examples from the dataset"
    out observations: str       "What holds for most or all of the examples"
}

signature DescribeMoreData {
    """
    Below are a few more examples drawn from a dataset, and the observations made so far
    on earlier examples. Add any new observations that hold for most or all of the
    examples. If the observations already cover everything, answer with the single word
    COMPLETE.
    """
    in  examples:           list[str] "More examples from the dataset"
    in  prior_observations: str       "The observations made so far"
    out observations:       str       "New observations, or COMPLETE when there is nothing to add"
}

signature SummarizeObservations {
    """
    Below are observations made about a dataset. Summarize them in two or three
    sentences that keep only the most important points.
    """
    in  observations: str "Observations about the dataset"
    out summary:      str "A two- or three-sentence summary of the key observations"
}

signature DescribeProgram {
    """
    Below is an outline of a program that solves a task by calling language models, and
    an example of it at work. Describe the task it is built to solve and how it solves it.
    """
    in  program_code: str "The program: its steps and the signature of each language-model call"
    in  program_example:     str "An example of the program at work"
    out program_description: str "The task the program solves and how it goes about it"
}

signature DescribeModule {
    """
    Below is an outline of a program that solves a task by calling language models, an
    example of it at work and a description of it. Describe the role of the named step
    within the program.
    """
    in  program_code: str "The program: its steps and the signature of each language-model call"
    in  program_example:     str "An example of the program at work"
    in  program_description: str "The task the program solves and how it goes about it"
    in  module:              str "The step to describe"
    out module_description:  str "The role of this step in the program"
}

signature ProposeGroundedInstruction {
    """
    Use what is known below about a task solved with calls to a language model (the
    dataset, the program, the step in question, and worked examples of that step) to
    write a new instruction for that step, one that will make the language model solve
    the task better.
    """
    in  dataset_description:  str "What the dataset looks like"
    in  program_code:         str "The program the step belongs to"
    in  program_description:  str "The task the program solves and how"
    in  module:               str "The step to write an instruction for"
    in  module_description:   str "The role of this step in the program"
    in  task_demos:           str "Worked examples of this step: inputs and outputs"
    in  basic_instruction:    str "The step's current instruction"
    in  tip:                  str "A suggestion for how to write the new instruction"
    out proposed_instruction: str "The new instruction for this step"
}

predictor DatasetDescriber = predict(DescribeDataset)
predictor MoreDataDescriber = predict(DescribeMoreData)
predictor ObservationSummarizer = predict(SummarizeObservations)
predictor ProgramDescriber = predict(DescribeProgram)
predictor ModuleDescriber = predict(DescribeModule)
predictor GroundedProposer = predict(ProposeGroundedInstruction)
