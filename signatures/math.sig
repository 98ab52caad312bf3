"""Word problems, solved by code, by sampling, by refinement and by comparison."""

signature SolveMath {
    """Solve the math word problem. Give the final answer as a number."""
    in  problem: str   "A math word problem"
    out answer:  float "The numeric answer"
}

# Writes Python, runs it in the sandbox, answers from its output.
predictor Solver = program_of_thought(SolveMath, max_iters=3)
# Up to four samples; the first one the reward function accepts wins.
predictor Best = best_of_n(SolveMath, n=4)
# Up to three attempts with reasoning, with advice after each miss.
predictor Polished = refine(SolveMath, n=3, module="chain_of_thought")
# Three reasoning attempts, then one comparison.
predictor Judge = multi_chain_comparison(SolveMath, m=3)
