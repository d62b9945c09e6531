"""numpydoc validation of every public name of cudakmeans (the ``lint`` nox session).

Public names are those in ``cudakmeans.__all__``, ``cudakmeans.templates.__all__`` and
``cudakmeans.dask.__all__`` (the ``dask`` extra: the lint session installs it); each
class's public methods and properties are checked too. A public name must pass every
numpydoc check but ES01 and RT02 (see below); a method or property also needs no See Also
or Examples section of its own (its class has them).

    python scripts/check_docstrings.py          # exit 1 and one line per error
"""

import inspect
import sys

from numpydoc.validate import validate

import cudakmeans
import cudakmeans.dask
import cudakmeans.templates

# ES01: an extended summary is optional. RT02: returns are written "name : type", as
# scikit-learn writes them ("self : KMeans"), which numpydoc's check reads as a type only.
NAME_IGNORED = {"ES01", "RT02"}
MEMBER_IGNORED = NAME_IGNORED | {"SA01", "EX01"}
# Members that exist for scikit-learn's machinery, not for users.
PRIVATE_MEMBERS = {"__sklearn_tags__", "__init__"}


def public_objects():
    """``(dotted name, is_member)`` for every name to check."""
    seen = set()
    for module in (cudakmeans, cudakmeans.templates, cudakmeans.dask):
        names = module.__all__
        for name in names:
            obj = getattr(module, name)
            qualified = f"{module.__name__}.{name}"
            if inspect.ismodule(obj) or id(obj) in seen:
                continue  # modules are walked through their __all__; re-exports once
            seen.add(id(obj))
            yield qualified, False
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for member, value in inspect.getmembers(obj):
                    if member.startswith("_") or member in PRIVATE_MEMBERS:
                        continue
                    if callable(value) or isinstance(value, property):
                        if not _defined_in_cudakmeans(obj, member):
                            continue
                        yield f"{qualified}.{member}", True


def _defined_in_cudakmeans(cls, member):
    for base in cls.__mro__:
        if member in vars(base):
            return (base.__module__ or "").startswith("cudakmeans")
    return False


def main():
    failures = []
    for name, is_member in public_objects():
        ignored = MEMBER_IGNORED if is_member else NAME_IGNORED
        for code, message in validate(name)["errors"]:
            if code not in ignored:
                failures.append(f"{name}: {code} {message}")
    print("\n".join(failures) if failures else "numpydoc: every public docstring validates")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
