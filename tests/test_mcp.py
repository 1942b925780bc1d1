"""The app as a tool for agents: Gradio's MCP server lists the picture endpoints, never training."""

import asyncio
import base64
import io

import numpy as np
from PIL import Image


async def _tools_and_a_call(url: str):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(f"{url}/gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            answer = await session.call_tool("conditional", {"digit": 3, "n": 4, "seed": 0})
            refused = await session.call_tool("stop", {})  # not listed, and not callable either
    return tools, answer, refused


def test_agents_see_the_picture_tools_with_their_docs_and_get_a_picture_back(server, client):
    import json
    import urllib.request

    tools, answer, refused = asyncio.run(_tools_and_a_call(server.url))
    by_name = {tool.name: tool for tool in tools}
    assert {"sample", "conditional", "traverse", "reconstruct", "complete", "explain"} <= set(by_name)
    training = {"train", "stop", "adopt", "adopt_run", "load_checkpoint", "continue_run"}
    assert not training & set(by_name)  # training is not for agents
    with urllib.request.urlopen(f"{server.url}/gradio_api/mcp/schema") as response:
        schema = {tool["name"] for tool in json.load(response)}
    assert "sample" in schema and not training & schema  # nor in the JSON schema
    assert refused.isError and client.predict(api_name="/stop") == "No run is in progress."  # the API keeps it
    conditional = by_name["conditional"]
    assert "CVAE" in conditional.description
    assert conditional.inputSchema["properties"]["digit"]["type"] == "integer"
    assert "class index" in conditional.inputSchema["properties"]["digit"]["description"]
    assert not answer.isError
    image = next(part for part in answer.content if part.type == "image")
    got = np.asarray(Image.open(io.BytesIO(base64.b64decode(image.data))).convert("L"))
    with Image.open(client.predict(digit=3, n=4, seed=0, api_name="/conditional")) as im:
        assert np.array_equal(got, np.asarray(im.convert("L")))  # the same picture as the API's
