"""An independent gRPC client (grpcio, stubs generated from the contract) calling ADDR.
Prints one JSON document with what it got; exits 1 if the contract is broken.
    python3 grpc_client.py 127.0.0.1:4000"""
import json
import sys

import grpc

import contract

pb, pb_grpc = contract.load()
addr = sys.argv[1]
with grpc.insecure_channel(addr) as channel:
    stub = pb_grpc.RecipeServiceStub(channel)
    recipe = stub.GetRecipe(pb.RecipeRequest(id=42), timeout=5)
    meta = stub.GetMetaData(pb.Empty(), timeout=5)
    try:
        stub.GetRecipe(pb.RecipeRequest(id=7), timeout=5)
        not_found = {"code": "OK"}
    except grpc.RpcError as e:
        not_found = {"code": e.code().name, "details": e.details()}
out = {
    "recipe": {
        "id": recipe.id,
        "name": recipe.name,
        "steps": recipe.steps,
        "ingredients": [{"id": i.id, "name": i.name, "quantity": i.quantity} for i in recipe.ingredients],
    },
    "pid": meta.pid,
    "not_found": not_found,
}
print(json.dumps(out))
ok = recipe.id == 42 and len(recipe.ingredients) == 2 and meta.pid > 0 and not_found["code"] == "NOT_FOUND"
sys.exit(0 if ok else 1)
