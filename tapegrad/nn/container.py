"""`Sequential`: modules applied one after the other."""

from .module import Module


class Sequential(Module):
    """``Sequential(Linear(2, 25), ReLU(), ...)``: indexable, iterable, with len()."""

    def __init__(self, *modules: Module):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential takes Modules; argument {index} is a "
                                f"{type(module).__name__}")
            self.add_module(str(index), module)

    def forward(self, x):
        for name, module in self._modules.items():
            try:
                x = module(x)
            except (TypeError, ValueError, RuntimeError) as error:
                # Several layers may print alike: say which one failed, by its dotted name
                # (as in named_modules()). Python prints notes under the message.
                _name_layer(error, name, type(self).__name__)
                raise
        return x

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self


_NOTE = "  in layer "


def _name_layer(error: BaseException, name: str, owner: str) -> None:
    """Add (or, from a nested Sequential, extend) the note 'in layer 2.1 of Sequential'."""
    notes = getattr(error, "__notes__", None)
    if notes and notes[-1].startswith(_NOTE):
        inner = notes[-1][len(_NOTE):].split(" ", 1)[0]
        notes[-1] = f"{_NOTE}{name}.{inner} of {owner}"
    else:
        error.add_note(f"{_NOTE}{name} of {owner}")
