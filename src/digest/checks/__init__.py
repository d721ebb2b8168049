"""The pre-send gate: checks that find a wrong email before it goes out (findings with level, code, file:line, next step)."""
