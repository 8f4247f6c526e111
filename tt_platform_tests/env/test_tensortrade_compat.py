import json
import subprocess
import sys


def test_tensortrade_generic_env_imports_without_tensorflow_or_gym():
    # A fresh interpreter, so earlier imports in this test session cannot hide a failure.
    code = (
        "import json, sys\n"
        "from tt_platform.env.tensortrade_compat import import_tensortrade\n"
        "tt = import_tensortrade()\n"
        "import tensortrade.env.generic as generic\n"
        "import tensortrade.env.default as default\n"
        "import gymnasium\n"
        "print(json.dumps({'tf': 'tensorflow' in sys.modules,\n"
        "                  'gym_is_gymnasium': sys.modules['gym'] is gymnasium,\n"
        "                  'has_env': hasattr(generic, 'TradingEnv'),\n"
        "                  'has_create': hasattr(default, 'create')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts == {"tf": False, "gym_is_gymnasium": True, "has_env": True, "has_create": True}


def test_stubbed_agents_explain_themselves():
    from tt_platform.env.tensortrade_compat import import_tensortrade

    import_tensortrade()
    import tensortrade.agents as agents

    try:
        agents.DQNAgent()
    except ImportError as exc:
        assert "TensorFlow" in str(exc)
    else:
        raise AssertionError("the stubbed agent must refuse to build")
