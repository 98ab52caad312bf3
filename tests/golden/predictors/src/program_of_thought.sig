"""program_of_thought: with and without max_iters; a signature without instructions."""

signature Problem {
    in  text:   str    "A word problem"
    out result: int    "The result"
}

predictor Solver = program_of_thought(Problem)
predictor PatientSolver = program_of_thought(Problem, max_iters=5, adapter="json")
