"""Python guest: implements the `fib` world, componentized by componentize-py."""

import wit_world


class WitWorld(wit_world.WitWorld):
    def fib(self, n: int) -> int:
        a, b = 0, 1
        for _ in range(n):
            a, b = b, a + b
        return a

    def greet(self, name: str) -> str:
        return f"Hello, {name}!"

    def price(self, net: float, rate: float) -> wit_world.Quote:
        vat = round(net * rate, 2)
        return wit_world.Quote(net=net, vat=vat, gross=round(net + vat, 2))
