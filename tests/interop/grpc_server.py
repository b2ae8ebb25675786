"""An independent recipe gRPC server (grpcio, stubs generated from the contract), run by the
lab as a `command` service: it reads HOST and PORT like the book's services."""
import os
from concurrent import futures

import grpc

import contract

pb, pb_grpc = contract.load()


class Recipes(pb_grpc.RecipeServiceServicer):
    def GetRecipe(self, request, context):
        if request.id != 42:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no recipe {request.id} in the python kitchen")
        return pb.Recipe(
            id=42,
            name="Chicken Tikka Masala",
            steps="Throw it in a pot...",
            ingredients=[pb.Ingredient(id=1, name="Chicken", quantity="1 lb"), pb.Ingredient(id=2, name="Sauce", quantity="2 cups")],
        )

    def GetMetaData(self, request, context):
        return pb.Meta(pid=os.getpid())


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
pb_grpc.add_RecipeServiceServicer_to_server(Recipes(), server)
server.add_insecure_port(f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ['PORT']}")
server.start()
print("python grpc recipe server on", os.environ["PORT"], flush=True)
server.wait_for_termination()
