"""The seed how-to's tasks and workflow as source text.

Shared by the tests that need them as notebook cells or in a fresh
``__main__``-like namespace; the how-to is the behaviour contract, so its
definitions are kept verbatim in one place.
"""

SEED_TASKS = '''
import covalent_nb as ct

@ct.electron
def task_0(a):
    return a

@ct.electron
def task_1(a, b):
    return a + b

@ct.electron
def task_2(a, b):
    return a / b

@ct.electron
def task_2_redefined(a, b):
    return a * b
'''

SEED_LATTICE = '''
@ct.lattice
def workflow(a, b):
    res_0 = task_0(a)
    res_1 = task_1(res_0, b)
    res_2 = task_2(res_1, b)
    return res_2
'''

#: The same workflow written as a ``%%lattice`` cell.
SEED_LATTICE_MAGIC = '''%%lattice workflow(a, b)
res_0 = task_0(a)
res_1 = task_1(res_0, b)
task_2(res_1, b)
'''
