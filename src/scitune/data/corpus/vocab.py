"""The science vocabulary the built-in corpus draws from: quantities with units, series names,
diagram themes and equations. Plain tuples (immutable); every figure picks from these with the
figure's own random generator."""

from __future__ import annotations

from typing import NamedTuple


class Quantity(NamedTuple):
    """A measurable quantity as it appears on an axis: `Temperature (K)`."""

    name: str
    unit: str
    topic: str  # ScienceQA topic of the questions it yields (its subject: `subject_of`)
    low: float  # a typical range of values
    high: float
    log_ok: bool = False  # spans decades, so a log axis makes sense

    @property
    def label(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


NAT, SOC, LAN = "natural science", "social science", "language science"

# Independent variables (x axes of line graphs and scatter plots).
X_QUANTITIES = (
    Quantity("Time", "s", "physics", 0, 60),
    Quantity("Time", "h", "biology", 0, 48),
    Quantity("Temperature", "K", "chemistry", 250, 400),
    Quantity("Depth", "m", "earth-science", 0, 100),
    Quantity("Altitude", "km", "earth-science", 0, 12),
    Quantity("Voltage", "V", "physics", 0, 10),
    Quantity("Frequency", "Hz", "physics", 10, 5000, True),
    Quantity("Dose", "mg", "biology", 0, 50),
    Quantity("Distance", "cm", "physics", 0, 30),
    Quantity("Concentration", "mM", "chemistry", 1, 1000, True),
    Quantity("Year", "", "economics", 1990, 2020),
    Quantity("Age", "years", "geography", 0, 80),
)

# Dependent variables (y axes; also the values of bar charts).
Y_QUANTITIES = (
    Quantity("Pressure", "kPa", "physics", 50, 300),
    Quantity("Current", "mA", "physics", 0, 200),
    Quantity("Energy", "J", "physics", 1, 5000, True),
    Quantity("Velocity", "m/s", "physics", 0, 40),
    Quantity("Mass", "g", "chemistry", 0, 500),
    Quantity("Solubility", "g/L", "chemistry", 0, 300),
    Quantity("Reaction rate", "mol/s", "chemistry", 0.01, 100, True),
    Quantity("Population", "cells", "biology", 10, 5000, True),
    Quantity("Growth", "mm", "biology", 0, 80),
    Quantity("Rainfall", "mm", "earth-science", 0, 300),
    Quantity("Temperature", "°C", "earth-science", -10, 40),
    Quantity("Intensity", "a.u.", "physics", 0, 1),
    Quantity("Price", "$", "economics", 1, 100),
    Quantity("Income", "k$", "economics", 10, 90),
    Quantity("Residents", "thousands", "geography", 5, 900),
)

# Names of plotted series or bar groups, by theme; a figure takes its names from one theme.
SERIES_NAMES = {
    "physics": ("Copper", "Iron", "Glass", "Wood", "Steel", "Rubber", "Water", "Air"),
    "chemistry": ("NaCl", "KNO3", "Sugar", "Ethanol", "Acid", "Base", "Catalyst", "Control"),
    "biology": ("Wolves", "Deer", "Rabbits", "Mice", "Algae", "Ferns", "Oaks", "Bees"),
    "earth-science": ("Lima", "Oslo", "Cairo", "Quito", "Perth", "Tokyo", "Denver", "Dakar"),
    "economics": ("Apples", "Bread", "Coffee", "Rice", "Wheat", "Milk", "Fuel", "Books"),
    "geography": ("North", "South", "East", "West", "Coast", "Valley", "Island", "Plains"),
    "model": ("Model A", "Model B", "Model C", "Baseline", "Ours", "Theory", "Sim", "Data"),
}

SOCIAL_TOPICS = ("economics", "geography", "world-history")


def subject_of(topic: str) -> str:
    """The ScienceQA subject a topic belongs to (figures: natural or social science)."""
    return SOC if topic in SOCIAL_TOPICS else NAT


# Colours distinct at 64 px, and markers.
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")
MARKERS = ("o", "s", "^", "D", "v")


class DiagramTheme(NamedTuple):
    """A node diagram: labels and the relation an arrow stands for."""

    name: str  # "food web", "water cycle", ...
    topic: str
    labels: tuple[str, ...]
    arrow_meaning: str  # "energy flows from A to B" style phrase with {a} and {b}


DIAGRAM_THEMES = (
    DiagramTheme("food web", "biology",
                 ("Grass", "Algae", "Rabbit", "Mouse", "Snake", "Fox", "Hawk", "Fish", "Owl"),
                 "energy flows from {a} to {b}"),
    DiagramTheme("water cycle", "earth-science",
                 ("Ocean", "Vapor", "Cloud", "Rain", "River", "Lake", "Snow", "Ice"),
                 "water moves from {a} to {b}"),
    DiagramTheme("phase changes", "chemistry",
                 ("Solid", "Liquid", "Gas", "Plasma", "Crystal", "Vapor"),
                 "matter changes from {a} to {b}"),
    DiagramTheme("circuit", "physics",
                 ("Battery", "Switch", "Resistor", "Lamp", "Motor", "Fuse", "Diode"),
                 "current flows from {a} to {b}"),
    DiagramTheme("pipeline", "physics",
                 ("Input", "Encoder", "Decoder", "Filter", "Output", "Sensor", "Memory", "Logic"),
                 "signals pass from {a} to {b}"),
    DiagramTheme("supply chain", "economics",
                 ("Farm", "Mill", "Bakery", "Store", "Buyer", "Truck", "Market", "Port"),
                 "goods move from {a} to {b}"),
)


class Equation(NamedTuple):
    name: str  # what the equation expresses
    tex: str  # mathtext source, without the surrounding $
    topic: str


EQUATIONS = (
    Equation("Newton's second law", r"F = m\,a", "physics"),
    Equation("mass-energy equivalence", r"E = m\,c^2", "physics"),
    Equation("the ideal gas law", r"p\,V = n\,R\,T", "chemistry"),
    Equation("Ohm's law", r"V = I\,R", "physics"),
    Equation("kinetic energy", r"E_k = \frac{1}{2}\,m\,v^2", "physics"),
    Equation("the wave speed relation", r"v = f\,\lambda", "physics"),
    Equation("photon energy", r"E = h\,\nu", "physics"),
    Equation("density", r"\rho = \frac{m}{V}", "physics"),
    Equation("Newton's law of gravitation", r"F = G\,\frac{m_1 m_2}{r^2}", "physics"),
    Equation("the Arrhenius equation", r"k = A\,e^{-E_a/RT}", "chemistry"),
    Equation("exponential growth", r"N(t) = N_0\,e^{r t}", "biology"),
    Equation("radioactive decay", r"N = N_0\,e^{-\lambda t}", "physics"),
    Equation("the pendulum period", r"T = 2\pi\sqrt{L/g}", "physics"),
    Equation("Coulomb's law", r"F = k\,\frac{q_1 q_2}{r^2}", "physics"),
    Equation("the Gaussian", r"f(x) = e^{-x^2/2\sigma^2}", "physics"),
    Equation("pH", r"\mathrm{pH} = -\log_{10}[\mathrm{H}^+]", "chemistry"),
)

FIGURE_TYPES = ("Graph Plot", "Scatterplot", "Bar Chart", "Node Diagram", "Equation")

# Words for the text-only language questions (alphabetical order, guide words).
WORDS = (
    "acid", "atom", "basalt", "beaker", "bond", "carbon", "cell", "comet", "crystal", "delta",
    "desert", "dune", "energy", "enzyme", "erosion", "fern", "flask", "fossil", "galaxy", "gene",
    "glacier", "gravity", "habitat", "helium", "igneous", "insect", "ion", "joule", "kelp",
    "kinetic", "lava", "lens", "magnet", "mantle", "meteor", "mineral", "nebula", "neuron",
    "nitrogen", "orbit", "oxygen", "photon", "planet", "plasma", "pollen", "quartz", "radar",
    "reptile", "salt", "seed", "solar", "spore", "tide", "tundra", "vapor", "virus", "volcano",
    "wave", "xylem", "yeast", "zinc", "zygote",
)

# Things that move, for the speed questions.
MOVERS = ("cyclist", "sled", "toy car", "runner", "boat", "train", "drone", "turtle")
NAMES = ("Maya", "Omar", "Lena", "Kofi", "Ines", "Ravi", "Yuki", "Sam", "Ada", "Tom")
GOODS = (("notebook", 3, 9), ("pen", 1, 4), ("atlas", 8, 20), ("lamp", 10, 30),
         ("microscope", 40, 90), ("kite", 5, 15), ("magnet set", 4, 12), ("globe", 15, 40))
EVENTS = (("a village was founded", "its first school opened"),
          ("a canal was dug", "a bridge was built over it"),
          ("a colony was settled", "its first newspaper was printed"),
          ("a railway reached a town", "the town's library opened"))
