"""study.grading.grader."""
