"""A safe arithmetic evaluator: the expression is parsed with `ast` and walked; nothing is ever `eval`ed.

Allowed: int and float literals, `+ - * / // % **`, unary `+ -`, parentheses, the constants in `CONSTANTS` and
calls of the functions in `FUNCTIONS` with positional arguments. Sizes are bounded (expression length, node count,
exponents, integer size) so no expression can take long or eat memory.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from nexent.tools.registry import ToolError

__all__ = ["CONSTANTS", "FUNCTIONS", "evaluate", "format_number"]

Number = int | float

MAX_EXPRESSION_LENGTH = 1000
MAX_NODES = 300
MAX_INT_BITS = 10_000  # about 3000 decimal digits, under Python's int-to-str limit
MAX_FACTORIAL = 1000

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(n: Number) -> Number:
    if isinstance(n, float):
        if not n.is_integer():
            raise ToolError("factorial() takes a whole number.", "invalid_expression")
        n = int(n)
    if n < 0 or n > MAX_FACTORIAL:
        raise ToolError(f"factorial() takes a whole number from 0 to {MAX_FACTORIAL}.", "invalid_expression")
    return math.factorial(n)


def _round(x: Number, digits: Number = 0) -> Number:
    if not isinstance(digits, int):
        raise ToolError("round() takes a whole number of digits.", "invalid_expression")
    return round(x, digits) if digits else round(x)


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": math.sqrt,
    "cbrt": math.cbrt,
    "exp": math.exp,
    "log": _log,
    "ln": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "atan2": math.atan2,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "degrees": math.degrees,
    "radians": math.radians,
    "hypot": math.hypot,
    "abs": abs,
    "round": _round,
    "floor": math.floor,
    "ceil": math.ceil,
    "trunc": math.trunc,
    "factorial": _factorial,
    "min": min,
    "max": max,
}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _refuse(message: str) -> ToolError:
    return ToolError(message, "invalid_expression")


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression; raises `ToolError` for anything else or anything too big."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise _refuse(f"The expression is longer than {MAX_EXPRESSION_LENGTH} characters.")
    text = expression.strip().replace("×", "*").replace("÷", "/")  # noqa: RUF001
    if not text:
        raise _refuse("The expression is empty.")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _refuse("The expression is not valid arithmetic.") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise _refuse("The expression is too long.")
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise ToolError("Division by zero.", "division_by_zero") from None
    except OverflowError:
        raise ToolError("The result is too large.", "overflow") from None
    except (ValueError, TypeError) as exc:
        raise _refuse(f"The expression cannot be computed: {exc}.") from None
    except RecursionError:
        raise _refuse("The expression is nested too deeply.") from None
    return value


def _eval(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _refuse("Only numbers are allowed.")
        return _checked(node.value)
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise _refuse(f"Unknown name {node.id!r}; allowed constants: {', '.join(CONSTANTS)}.")
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise _refuse("Only unary + and - are allowed.")
        return _checked(unary(_eval(node.operand)))
    if isinstance(node, ast.BinOp):
        binary = _BINARY.get(type(node.op))
        if binary is None:
            hint = " (use ** for powers)" if isinstance(node.op, ast.BitXor) else ""
            raise _refuse(f"Only + - * / // % ** are allowed{hint}.")
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _checked(binary(left, right))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise _refuse(f"Only these functions are allowed: {', '.join(FUNCTIONS)}.")
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise _refuse("Functions take positional arguments only.")
        args = [_eval(arg) for arg in node.args]
        return _checked(FUNCTIONS[node.func.id](*args))
    raise _refuse(f"{type(node).__name__} is not allowed; only arithmetic on numbers.")


def _check_power(base: Number, exponent: Number) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1):
        return
    if exponent > MAX_INT_BITS or (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
        raise ToolError("The result is too large.", "overflow")


def _checked(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse("The result is not a real number.")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError("The result is too large.", "overflow")
    if isinstance(value, float) and math.isinf(value):
        raise ToolError("The result is too large.", "overflow")
    if isinstance(value, float) and math.isnan(value):
        raise _refuse("The result is not a number.")
    return value


def format_number(value: Number) -> str:
    """A number as text: integers exactly, floats to 15 significant digits (`0.1 + 0.2` shows `0.3`)."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".15g")
