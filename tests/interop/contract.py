"""Generate Python gRPC stubs from the contract proto (services/recipe-api/contracts/recipe.proto)
at run time, so the Python side is built from the same file and from nothing of ours."""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CONTRACTS = os.path.join(HERE, "..", "..", "services", "recipe-api", "contracts")


def load():
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="recipe-pb-")
    rc = protoc.main(["protoc", f"-I{CONTRACTS}", f"--python_out={out}", f"--grpc_python_out={out}", "recipe.proto"])
    if rc != 0:
        sys.exit(f"protoc failed with {rc}")
    sys.path.insert(0, out)
    import recipe_pb2
    import recipe_pb2_grpc

    return recipe_pb2, recipe_pb2_grpc


def graphql_sdl():
    with open(os.path.join(CONTRACTS, "recipe.graphql")) as f:
        return f.read()
